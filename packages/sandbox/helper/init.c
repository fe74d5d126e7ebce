/* init.c: pid 1 inside the sandbox (and, in enter mode, the joiner, which runs the same loop
 * from outside the target's pid namespace). It forks the command (pid 2), reports to the monitor when
 * the exec succeeded (a CLOEXEC pipe closes) or failed (the command writes a report into it
 * first), forwards INT TERM HUP QUIT USR1 USR2 WINCH to the command, reaps every zombie, relays
 * the pty in tty mode, and exits with the command's status once the command is gone (the
 * kernel then kills whatever else is left in the pid namespace). */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/statfs.h>
#include <sys/wait.h>

#include "sandbox.h"

void forward_signals(sigset_t *set) {
  static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
  sigemptyset(set);
  for (size_t i = 0; i < N_ELEMENTS(sigs); i++) sigaddset(set, sigs[i]);
}

static void send_report(int fd, int type, int code, int sig, pid_t pid, const char *overlay,
                        int flags) {
  struct report r = {.type = type, .code = code, .signal = sig, .pid = (int32_t)pid, .flags = flags};
  if (overlay != NULL) snprintf(r.overlay, sizeof r.overlay, "%s", overlay);
  /* If the monitor is gone there is nobody to tell; PDEATHSIG is about to end us anyway. */
  (void)!write_all(fd, &r, sizeof r);
}

struct init_state {
  pid_t command;
  int exec_fd;     /* read end of the exec pipe, -1 once it hit EOF */
  bool started;    /* REPORT_STARTED sent */
  bool failed;     /* the command reported an exec/setup error */
  struct report error;
  bool done;
  int status;
};

/* Reads the exec pipe: a report means the command failed before exec; EOF means exec worked. */
static void read_exec_pipe(struct init_state *st, int report_fd, const char *overlay, bool block) {
  for (;;) {
    struct report r;
    ssize_t n = read(st->exec_fd, &r, sizeof r);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN && !block) return;
    if (n == (ssize_t)sizeof r && r.type == REPORT_ERROR) {
      st->failed = true;
      st->error = r;
      continue;
    }
    /* EOF (or a broken pipe): nobody holds the write end any more. */
    close(st->exec_fd);
    st->exec_fd = -1;
    if (!st->failed && !st->started) {
      send_report(report_fd, REPORT_STARTED, 0, 0, st->command, overlay, 0);
      st->started = true;
    }
    return;
  }
}

static void reap(struct init_state *st) {
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid <= 0) return; /* ECHILD or nothing more to reap */
    if (pid == st->command) {
      st->done = true;
      st->status = status;
    }
  }
}

/* Whether the sandbox's /tmp is full (under 1% of its blocks free, or no inode left): a
 * failed command then most likely died of it, and the caller can say which limit it hit. */
static bool tmp_full(void) {
  struct statfs fs;
  if (statfs("/tmp", &fs) < 0) return false; /* no /tmp to blame */
  return (fs.f_blocks > 0 && fs.f_bavail * 100 < fs.f_blocks) ||
         (fs.f_files > 0 && fs.f_ffree == 0);
}

/* Whether the sandbox holds about as many tasks as the command's RLIMIT_NPROC allows (the
 * limit counts the tasks of root inside, which are all of them): a failed command then most
 * likely could not fork. No counter says so (a pids cgroup has one, read by the caller), so
 * init counts /proc/<pid>/task/ once the command has gone, while its children still live. */
static bool pids_full(const struct spec *spec) {
  uint64_t limit = 0;
  for (size_t i = 0; i < spec->nrlimits; i++)
    if (strcmp(spec->rlimits[i].name, "nproc") == 0) limit = spec->rlimits[i].soft;
  if (limit == 0 || limit == UINT64_MAX || spec->enter_pid != 0) return false;
  DIR *proc = opendir("/proc");
  if (proc == NULL) return false;
  uint64_t tasks = 0;
  struct dirent *e;
  while ((e = readdir(proc)) != NULL) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    char path[300];
    snprintf(path, sizeof path, "/proc/%.255s/task", e->d_name);
    DIR *task = opendir(path);
    if (task == NULL) continue; /* gone meanwhile */
    struct dirent *t;
    while ((t = readdir(task)) != NULL)
      if (t->d_name[0] >= '1' && t->d_name[0] <= '9') tasks++;
    closedir(task);
  }
  closedir(proc);
  return tasks * 10 >= limit * 9;
}

void init_run(const struct spec *spec, const struct idmap *map, const struct mount_plan *plan,
              int report_fd) {
  const char *overlay = plan->used == DRIVER_FUSE ? "fuse" : "kernel";
  int master = -1, slave_keep = -1;
  if (spec->tty) {
    master = tty_open_master();
    slave_keep = tty_open_slave(master);
    tty_copy_winsize(master);
  }

  int exec_pipe[2];
  if (pipe2(exec_pipe, O_CLOEXEC) < 0) die_errno("pipe");
  pid_t pid = fork();
  /* Entering: a pid namespace whose init has exited takes no new processes. */
  if (pid < 0 && errno == ENOMEM && spec->enter_pid != 0)
    die_reason("exited", 0, "enter %d: the sandbox has exited", (int)spec->enter_pid);
  if (pid < 0) die_errno("fork the command");
  if (pid == 0) {
    close(exec_pipe[0]);
    close(report_fd);
    die_sink_report(exec_pipe[1]);
    command_exec(spec, map, master, exec_pipe[1]);
  }
  close(exec_pipe[1]);

  struct init_state st = {.command = pid, .exec_fd = exec_pipe[0]};
  if (fcntl(st.exec_fd, F_SETFL, O_NONBLOCK) < 0) die_errno("fcntl exec pipe");
  struct tty_relay *relay = master >= 0 ? tty_relay_new(master) : NULL;

  /* The monitor blocked these before clone, so none were lost; read them from a signalfd. */
  sigset_t set;
  forward_signals(&set);
  sigaddset(&set, SIGCHLD);
  int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) die_errno("signalfd");

  while (!st.done) {
    struct pollfd fds[4];
    int n = 0;
    fds[n++] = (struct pollfd){sfd, POLLIN, 0};
    if (st.exec_fd >= 0) fds[n++] = (struct pollfd){st.exec_fd, POLLIN, 0};
    int first_tty = n;
    if (relay != NULL) n += tty_relay_poll_fds(relay, fds + n, 4 - n);
    if (poll(fds, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      die_errno("poll");
    }
    if (fds[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        int sig = (int)si.ssi_signo;
        if (sig == SIGCHLD) reap(&st);
        else if (sig == SIGWINCH && master >= 0) tty_copy_winsize(master);
        else if (kill(st.command, sig) < 0 && errno != ESRCH) warn("forward signal %d", sig);
      }
    }
    if (st.exec_fd >= 0 && fds[1].revents != 0) read_exec_pipe(&st, report_fd, overlay, false);
    if (relay != NULL) tty_relay_handle(relay, fds + first_tty, n - first_tty);
  }

  /* The command is gone: its end of the exec pipe is closed, so this read cannot block. */
  if (st.exec_fd >= 0) {
    if (fcntl(st.exec_fd, F_SETFL, 0) < 0) die_errno("fcntl exec pipe");
    read_exec_pipe(&st, report_fd, overlay, true);
  }
  if (st.failed) {
    /* Relay the command's own record: it carries the message (e.g. "exec foo: not found"). */
    (void)!write_all(report_fd, &st.error, sizeof st.error);
    _exit(st.error.code);
  }
  if (relay != NULL) tty_relay_drain(relay);
  if (slave_keep >= 0) close(slave_keep);

  int code, sig = 0;
  if (WIFSIGNALED(st.status)) {
    sig = WTERMSIG(st.status);
    code = 128 + sig;
  } else {
    code = WEXITSTATUS(st.status);
  }
  int flags =
      code == 0 ? 0 : (tmp_full() ? REPORT_TMP_FULL : 0) | (pids_full(spec) ? REPORT_PIDS_FULL : 0);
  send_report(report_fd, REPORT_EXIT, code, sig, 0, NULL, flags);
  _exit(code);
}
