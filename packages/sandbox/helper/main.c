/* main.c: castle-sandbox's entry point. main() is the setup sequence in order; the monitor
 * (this process, outside every namespace) then waits for init, forwards signals, watches the
 * caller through the sync fd and writes the JSON status lines.
 *
 *   castle-sandbox --spec-fd N [--status-fd N] [--sync-fd N]   run the spec read from fd N
 *   castle-sandbox --probe                                      print what this machine supports
 *   castle-sandbox --version | --help
 *
 * Process layout: monitor (caller's namespaces) -> init (pid 1 inside) -> command (pid 2). */
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "sandbox.h"

struct options {
  int spec_fd, status_fd, sync_fd;
};

static const char usage[] =
    "usage: castle-sandbox --spec-fd N [--status-fd N] [--sync-fd N]\n"
    "       castle-sandbox --probe | --version | --help\n"
    "Runs a command in a rootless sandbox described by the spec read from --spec-fd\n"
    "(format: see spec.c). Status JSON lines go to --status-fd; when --sync-fd reaches EOF\n"
    "the sandbox is killed. Exit: the command's status, 128+signal, or 125 (setup failed),\n"
    "126 (not executable), 127 (not found).\n";

static int parse_fd(const char *flag, const char *value) {
  uint64_t fd;
  if (value == NULL || !parse_u64(value, 1u << 20, &fd)) die("%s needs a file descriptor number", flag);
  if (fcntl((int)fd, F_GETFD) < 0) die_errno("%s %d", flag, (int)fd);
  return (int)fd;
}

static struct options parse_options(int argc, char **argv) {
  struct options opt = {-1, -1, -1};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--version") == 0) {
      printf("castle-sandbox %s (spec castle-sandbox-spec/1)\n", CASTLE_VERSION);
      exit(0);
    } else if (strcmp(a, "--help") == 0) {
      fputs(usage, stdout);
      exit(0);
    } else if (strcmp(a, "--probe") == 0) {
      exit(probe_main());
    } else if (strcmp(a, "--spec-fd") == 0) {
      opt.spec_fd = parse_fd(a, i + 1 < argc ? argv[++i] : NULL);
    } else if (strcmp(a, "--status-fd") == 0) {
      opt.status_fd = parse_fd(a, i + 1 < argc ? argv[++i] : NULL);
    } else if (strcmp(a, "--sync-fd") == 0) {
      opt.sync_fd = parse_fd(a, i + 1 < argc ? argv[++i] : NULL);
    } else {
      die("unknown argument \"%.64s\" (see --help)", a);
    }
  }
  if (opt.spec_fd < 0) die("--spec-fd is required (see --help)");
  return opt;
}

static void loopback_up(void) {
  autoclose int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) die_errno("socket for lo");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) die_errno("get lo flags");
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) die_errno("bring lo up");
}

/* Puts init into a cgroup v2 dir the caller prepared (limits for everything inside). */
static void join_cgroup(const char *dir, pid_t pid) {
  char path[4096], line[32];
  snprintf(path, sizeof path, "%s/cgroup.procs", dir);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  int n = snprintf(line, sizeof line, "%d\n", (int)pid);
  if (fd < 0 || !write_all(fd, line, (size_t)n)) {
    int err = errno;
    kill(pid, SIGKILL);
    die_hint(err, "the caller must own a delegated cgroup v2 dir", "join cgroup %s", dir);
  }
  close(fd);
}

struct monitor {
  pid_t init;
  int report_fd, status_fd, sync_fd;
  bool have_error, have_exit, started, caller_gone;
  struct report error, exit;
  char overlay[8];
};

static void read_reports(struct monitor *m, bool block) {
  if (!block && fcntl(m->report_fd, F_SETFL, O_NONBLOCK) < 0) die_errno("fcntl report pipe");
  if (block && fcntl(m->report_fd, F_SETFL, 0) < 0) die_errno("fcntl report pipe");
  for (;;) {
    struct report r;
    ssize_t n = read(m->report_fd, &r, sizeof r);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n != (ssize_t)sizeof r) { /* EOF: init is gone */
      close(m->report_fd);
      m->report_fd = -1;
      return;
    }
    if (r.type == REPORT_STARTED) {
      r.overlay[sizeof r.overlay - 1] = '\0';
      memcpy(m->overlay, r.overlay, sizeof m->overlay);
      m->started = true;
      status_started(m->status_fd, m->init, m->overlay);
    } else if (r.type == REPORT_ERROR) {
      r.message[sizeof r.message - 1] = '\0';
      m->error = r;
      m->have_error = true;
    } else if (r.type == REPORT_EXIT) {
      m->exit = r;
      m->have_exit = true;
    }
  }
}

/* Waits for init while forwarding signals and watching the caller; returns the exit code. */
static int monitor_run(struct monitor *m, const struct spec *spec) {
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
    status_error(m->status_fd, m->error.code, m->error.message);
    return m->error.code;
  }
  if (m->have_exit) {
    status_exit(m->status_fd, m->exit.code, m->exit.signal);
    return m->exit.code;
  }
  if (WIFSIGNALED(wstatus)) {
    int sig = WTERMSIG(wstatus);
    status_exit(m->status_fd, 128 + sig, sig);
    return 128 + sig;
  }
  int code = WEXITSTATUS(wstatus);
  if (!m->started && code == 0) code = EXIT_SETUP; /* init ended without a word */
  status_exit(m->status_fd, code, 0);
  return code;
}

int main(int argc, char **argv) {
  struct options opt = parse_options(argc, argv);
  die_sink_status(opt.status_fd);
  /* The protocol fds must never reach the command. */
  set_cloexec(opt.spec_fd);
  if (opt.status_fd >= 0) set_cloexec(opt.status_fd);
  if (opt.sync_fd >= 0) set_cloexec(opt.sync_fd);

  /* 1. Read the spec: the whole sandbox is described by this one buffer. */
  size_t len;
  char *buf = read_fd_all(opt.spec_fd, MAX_SPEC_BYTES, &len, "spec");
  close(opt.spec_fd);
  struct spec spec;
  spec_parse(buf, len, &spec);

  /* 2. Validate against this machine: which uid map we can get and whether the ids fit it. */
  struct idmap map;
  idmap_plan(&map);
  idmap_check(&map, spec.uid, spec.gid);

  /* Forwarded signals are blocked before clone so none is lost; init inherits the mask and
   * reads them from a signalfd, like the monitor. */
  sigset_t set;
  forward_signals(&set);
  sigaddset(&set, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) die_errno("sigprocmask");
  if (spec.tty) tty_raw_caller();

  int report[2], life[2];
  if (pipe2(report, O_CLOEXEC) < 0 || pipe2(life, O_CLOEXEC) < 0) die_errno("pipe");

  /* 3. Clone into every namespace at once: one syscall, and the child is pid 1 of its pid
   * namespace. The network namespace is skipped for "net host". */
  int flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC |
              CLONE_NEWCGROUP | (spec.net_host ? 0 : CLONE_NEWNET);
  pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)flags | SIGCHLD, NULL, NULL, NULL, NULL);
  if (pid < 0) die_hint(errno, userns_hint(errno), "clone the sandbox namespaces");

  if (pid > 0) {
    /* Monitor. 4. Map the subordinate range from outside, then let the child go on. */
    close(report[1]);
    close(life[0]);
    if (map.range) idmap_write_for(&map, pid);
    if (spec.cgroup != NULL) join_cgroup(spec.cgroup, pid);
    if ((map.range || spec.cgroup != NULL) && !write_all(life[1], "g", 1))
      die_errno("release the sandbox");
    signal(SIGPIPE, SIG_IGN); /* a vanished caller must not kill the monitor mid-cleanup */
    struct monitor m = {.init = pid, .report_fd = report[0], .status_fd = opt.status_fd,
                        .sync_fd = opt.sync_fd};
    int code = monitor_run(&m, &spec);
    return m.caller_gone ? 128 + SIGKILL : code;
  }

  /* Init (pid 1 inside). Die with the monitor, and check it did not already die before the
   * parent-death signal was armed (its end of the life pipe would be closed). */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) die_errno("PR_SET_PDEATHSIG");
  close(report[0]);
  close(life[1]);
  die_sink_report(report[1]);
  int keep[] = {report[1], life[0]};
  close_fds_except(keep, N_ELEMENTS(keep));
  struct pollfd alive = {life[0], POLLIN, 0};
  bool wait_for_monitor = map.range || spec.cgroup != NULL;
  if (!wait_for_monitor && poll(&alive, 1, 0) > 0 && (alive.revents & POLLHUP)) _exit(EXIT_SETUP);

  /* 4. uid/gid maps: the caller becomes root inside (written by us, or by newuidmap from the
   * monitor, which also moves us into the spec's cgroup before it lets us go on). */
  if (wait_for_monitor) {
    char go;
    if (read(life[0], &go, 1) != 1) _exit(EXIT_SETUP);
  }
  if (!map.range) idmap_write_self(&map);
  close(life[0]);
  /* Not dumpable: processes inside cannot ptrace init or open its fds (the caller's stdio). */
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) die_errno("PR_SET_DUMPABLE");

  /* Namespaced state that needs no filesystem: loopback and hostname. */
  if (!spec.net_host) loopback_up();
  if (sethostname(spec.hostname, strlen(spec.hostname)) < 0) die_errno("sethostname");

  /* 5. Mounts: host sources first, resolved as the caller sees them. */
  struct mount_plan plan;
  mounts_resolve_host_paths(&spec);
  mounts_stage_host_sources(&spec, &plan);

  /* 6. pivot_root into the base tmpfs, assemble /newroot, pivot into it, detach the host. */
  mounts_pivot_to_base(&plan);
  mounts_assemble_root(&spec, &plan);
  mounts_enter_root(&plan);

  /* 7. Init: fork the command, which drops privileges, installs seccomp and execs. */
  init_run(&spec, &map, &plan, report[1]);
}
