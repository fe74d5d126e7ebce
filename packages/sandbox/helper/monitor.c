/* monitor.c: the helper's own process, outside every namespace of the sandbox. It waits for its
 * child (init, or in enter mode the joiner), forwards INT TERM HUP QUIT USR1 USR2 WINCH to it,
 * kills it when the sync fd reaches EOF (the caller died), turns the child's fixed-size reports
 * into JSON status lines, restores the caller's terminal, and tidies overlay uppers after a
 * clean exit. It also holds init's namespace files for `enter`, which init sends over the report
 * channel (see enter.c), and drops them as soon as init is gone, so the sandbox's mounts go away
 * exactly when they did before. */
#include <fcntl.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "sandbox.h"

void report_channel(int fds[2]) {
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
    die_errno("socketpair for reports");
}

/* One record from the child, and the fds a REPORT_NAMESPACES record carries. */
static ssize_t receive(struct monitor *m, struct report *r) {
  char control[CMSG_SPACE(NS_KINDS * sizeof(int))];
  struct iovec iov = {r, sizeof *r};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                       .msg_controllen = sizeof control};
  ssize_t n = recvmsg(m->report_fd, &msg, MSG_CMSG_CLOEXEC);
  if (n <= 0) return n;
  int fds[NS_KINDS];
  size_t nfds = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (nfds < NS_KINDS) fds[nfds++] = fd;
      else close(fd);
    }
  }
  /* Kinds in order, one fd per bit of code; anything else is dropped. */
  size_t used = 0;
  for (size_t k = 0; k < NS_KINDS; k++)
    if (n == (ssize_t)sizeof *r && r->type == REPORT_NAMESPACES && ((unsigned)r->code & (1U << k)) &&
        used < nfds && m->ns_fds[k] < 0)
      m->ns_fds[k] = fds[used++];
  for (; used < nfds; used++) close(fds[used]);
  return n;
}

void cgroups_join(const struct spec *spec, pid_t pid, const char *hint) {
  char line[32];
  int n = snprintf(line, sizeof line, "%d\n", (int)pid);
  for (size_t i = 0; i < spec->ncgroups; i++) {
    autofree char *path = xasprintf("%s/cgroup.procs", spec->cgroups[i]);
    autoclose int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || !write_all(fd, line, (size_t)n)) {
      int err = errno;
      if (spec->enter_pid == 0) kill(pid, SIGKILL); /* a new sandbox's init must not go on */
      die_hint(err, hint, "join cgroup %s", spec->cgroups[i]);
    }
  }
}

static void read_reports(struct monitor *m, bool block) {
  if (!block && fcntl(m->report_fd, F_SETFL, O_NONBLOCK) < 0) die_errno("fcntl report pipe");
  if (block && fcntl(m->report_fd, F_SETFL, 0) < 0) die_errno("fcntl report pipe");
  for (;;) {
    struct report r;
    ssize_t n = receive(m, &r);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n != (ssize_t)sizeof r) { /* EOF: the child is gone */
      close(m->report_fd);
      m->report_fd = -1;
      return;
    }
    if (r.type == REPORT_STARTED) {
      r.overlay[sizeof r.overlay - 1] = '\0';
      memcpy(m->overlay, r.overlay, sizeof m->overlay);
      m->started = true;
      /* Entering, the joiner sits in the host pid namespace: its child's pid is a host pid. */
      if (m->entering) status_started(m->status_fd, m->shown_init, NULL, r.pid);
      else status_started(m->status_fd, m->shown_init, m->overlay, 0);
    } else if (r.type == REPORT_ERROR) {
      r.message[sizeof r.message - 1] = '\0';
      r.reason[sizeof r.reason - 1] = '\0';
      m->error = r;
      m->have_error = true;
    } else if (r.type == REPORT_EXIT) {
      m->exit = r;
      m->have_exit = true;
    }
  }
}

static void release_namespaces(struct monitor *m) {
  for (size_t i = 0; i < N_ELEMENTS(m->ns_fds); i++)
    if (m->ns_fds[i] >= 0) {
      close(m->ns_fds[i]);
      m->ns_fds[i] = -1;
    }
}

int monitor_run(struct monitor *m, const struct spec *spec) {
  sigset_t set;
  forward_signals(&set);
  sigaddset(&set, SIGCHLD);
  int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) die_errno("signalfd");
  int wstatus = 0;
  bool exited = false;
  while (!exited) {
    struct pollfd fds[3] = {{sfd, POLLIN, 0}, {m->report_fd, POLLIN, 0}, {m->sync_fd, POLLIN, 0}};
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      die_errno("poll");
    }
    if (fds[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo != SIGCHLD) {
          if (kill(m->init, (int)si.ssi_signo) < 0 && errno != ESRCH)
            warn("forward signal %u: %s", si.ssi_signo, strerror(errno));
          continue;
        }
        pid_t p = waitpid(m->init, &wstatus, WNOHANG);
        if (p < 0 && errno != EINTR) die_errno("waitpid init");
        if (p == m->init) exited = true;
      }
    }
    if (m->report_fd >= 0 && fds[1].revents != 0) read_reports(m, false);
    if (m->sync_fd >= 0 && fds[2].revents != 0) {
      char buf[64];
      ssize_t n = read(m->sync_fd, buf, sizeof buf);
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
        /* The caller died (its end of the sync fd closed): take the sandbox down with it. */
        m->caller_gone = true;
        m->sync_fd = -1;
        if (kill(m->init, SIGKILL) < 0 && errno != ESRCH) warn("kill init: %s", strerror(errno));
      }
    }
  }
  close(sfd);
  /* Init is gone: let its namespaces (and with them its mounts) go too, before anything below
   * looks at the uppers or the caller hears that the sandbox ended. */
  release_namespaces(m);
  if (m->report_fd >= 0) read_reports(m, true);
  tty_restore_caller();

  /* Clean exit: volatile uppers are complete, so their "may be incomplete" marker goes. */
  if (spec->root.volatile_) overlay_clear_volatile(spec->root.work);
  for (size_t i = 0; i < spec->nmounts; i++)
    if (spec->mounts[i].kind == MOUNT_OVERLAY && spec->mounts[i].overlay.volatile_)
      overlay_clear_volatile(spec->mounts[i].overlay.work);

  /* fuse-overlayfs marks opaque dirs its own way; rewrite them to the kernel's form. */
  if (strcmp(m->overlay, "fuse") == 0) {
    if (spec->root.upper != NULL) fuse_normalize_upper(spec->root.upper);
    for (size_t i = 0; i < spec->nmounts; i++)
      if (spec->mounts[i].kind == MOUNT_OVERLAY && spec->mounts[i].overlay.upper != NULL)
        fuse_normalize_upper(spec->mounts[i].overlay.upper);
  }

  if (m->have_error) {
    status_error(m->status_fd, m->error.code, m->error.message, m->error.reason);
    return m->error.code;
  }
  if (m->have_exit) {
    status_exit(m->status_fd, m->exit.code, m->exit.signal, m->exit.flags);
    return m->exit.code;
  }
  if (WIFSIGNALED(wstatus)) {
    int sig = WTERMSIG(wstatus);
    status_exit(m->status_fd, 128 + sig, sig, 0);
    return 128 + sig;
  }
  int code = WEXITSTATUS(wstatus);
  if (!m->started && code == 0) code = EXIT_SETUP; /* init ended without a word */
  status_exit(m->status_fd, code, 0, 0);
  return code;
}
