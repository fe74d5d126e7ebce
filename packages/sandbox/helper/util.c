/* util.c: where errors are reported besides stderr (a status line or a report record), the
 * mount failure's hint, the JSON status writer, and checked allocation / I/O helpers. */
#include "util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "kabi.h"

static int sink_status_fd = -1;
static int sink_report_fd = -1;

/* die.h's report hook: the error as a status line or as a report record. */
static void report_error(int code, const char *reason, const char *message) {
  if (sink_status_fd >= 0) {
    status_error(sink_status_fd, code, message, reason);
  } else if (sink_report_fd >= 0) {
    struct report r = {.type = REPORT_ERROR, .code = code};
    snprintf(r.message, sizeof r.message, "%s", message);
    if (reason != NULL) snprintf(r.reason, sizeof r.reason, "%s", reason);
    (void)!write(sink_report_fd, &r, sizeof r);
  }
}

void die_sink_status(int fd) {
  sink_status_fd = fd;
  sink_report_fd = -1;
  die_report_to(report_error);
}

void die_sink_report(int fd) {
  sink_report_fd = fd;
  sink_status_fd = -1;
  die_report_to(report_error);
}

static const char *mount_hint(const char *fstype, int err) {
  bool overlay = fstype != NULL && strcmp(fstype, "overlay") == 0;
  bool proc = fstype != NULL && strcmp(fstype, "proc") == 0;
  if (overlay && err == EINVAL)
    return "overlayfs refused userxattr or the layers: kernel < 5.11? upper and work on the "
           "same filesystem, work empty?";
  if (overlay && err == EPERM)
    return "this kernel does not allow overlayfs in a user namespace (needs >= 5.11); "
           "try overlay: \"fuse\"";
  if (overlay && (err == EOPNOTSUPP || err == ENOTSUP))
    return "the upper directory's filesystem does not support user.* xattrs";
  if (overlay && err == ENODEV) return "overlayfs is not available: modprobe overlay";
  if (proc && err == EPERM)
    return "the host's /proc is partly covered (masked paths in a container?), so a fresh "
           "proc cannot be mounted";
  if (err == ENOENT) return "the source or target does not exist";
  if (err == EACCES) return "the caller cannot reach the source (check directory permissions)";
  return NULL;
}

void die_mount(const char *fstype, const char *source, const char *target) {
  int err = errno;
  const char *hint = mount_hint(fstype, err);
  if (source != NULL && fstype != NULL)
    die_hint(err, hint, "mount %s %s on %s", fstype, source, target);
  else if (fstype != NULL)
    die_hint(err, hint, "mount %s on %s", fstype, target);
  else
    die_hint(err, hint, "bind %s on %s", source != NULL ? source : "?", target);
}

/* ---- status JSON ---- */

static void status_line(int fd, const char *line, int len) {
  if (fd < 0 || len <= 0) return;
  /* Best effort: a caller that went away must not turn into a setup failure. */
  (void)!write_all(fd, line, (size_t)len);
}

void status_started(int fd, pid_t init_pid, const char *overlay, pid_t command_pid) {
  char line[160], extra[64] = "";
  int n = 0;
  if (overlay != NULL) n = snprintf(extra, sizeof extra, ",\"overlay\":\"%.8s\"", overlay);
  if (command_pid > 0 && n >= 0 && (size_t)n < sizeof extra)
    snprintf(extra + n, sizeof extra - (size_t)n, ",\"pid\":%d", (int)command_pid);
  n = snprintf(line, sizeof line, "{\"event\":\"started\",\"initPid\":%d%s}\n", (int)init_pid,
               extra);
  status_line(fd, line, n);
}

void status_exit(int fd, int code, int sig, int flags) {
  char line[192], signal_field[48] = "";
  if (sig > 0) snprintf(signal_field, sizeof signal_field, ",\"signal\":\"%s\"", signal_name(sig));
  int n = snprintf(line, sizeof line, "{\"event\":\"exit\",\"code\":%d%s%s%s}\n", code,
                   signal_field, flags & REPORT_TMP_FULL ? ",\"tmpFull\":true" : "",
                   flags & REPORT_PIDS_FULL ? ",\"pidsFull\":true" : "");
  status_line(fd, line, n);
}

void status_error(int fd, int code, const char *message, const char *reason) {
  char escaped[2048], why[64] = "";
  json_escape(escaped, sizeof escaped, message);
  if (reason != NULL && reason[0] != '\0') {
    char r[32];
    json_escape(r, sizeof r, reason);
    snprintf(why, sizeof why, ",\"reason\":\"%s\"", r);
  }
  char line[sizeof escaped + sizeof why + 64];
  int n = snprintf(line, sizeof line, "{\"event\":\"error\",\"code\":%d%s,\"message\":\"%s\"}\n",
                   code, why, escaped);
  status_line(fd, line, n);
}

const char *signal_name(int sig) {
  static const char *const names[] = {
      [SIGHUP] = "SIGHUP",   [SIGINT] = "SIGINT",     [SIGQUIT] = "SIGQUIT",
      [SIGILL] = "SIGILL",   [SIGTRAP] = "SIGTRAP",   [SIGABRT] = "SIGABRT",
      [SIGBUS] = "SIGBUS",   [SIGFPE] = "SIGFPE",     [SIGKILL] = "SIGKILL",
      [SIGUSR1] = "SIGUSR1", [SIGSEGV] = "SIGSEGV",   [SIGUSR2] = "SIGUSR2",
      [SIGPIPE] = "SIGPIPE", [SIGALRM] = "SIGALRM",   [SIGTERM] = "SIGTERM",
      [SIGCHLD] = "SIGCHLD", [SIGCONT] = "SIGCONT",   [SIGSTOP] = "SIGSTOP",
      [SIGTSTP] = "SIGTSTP", [SIGTTIN] = "SIGTTIN",   [SIGTTOU] = "SIGTTOU",
      [SIGURG] = "SIGURG",   [SIGXCPU] = "SIGXCPU",   [SIGXFSZ] = "SIGXFSZ",
      [SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF", [SIGWINCH] = "SIGWINCH",
      [SIGIO] = "SIGIO",     [SIGPWR] = "SIGPWR",     [SIGSYS] = "SIGSYS",
  };
  if (sig > 0 && (size_t)sig < N_ELEMENTS(names) && names[sig] != NULL) return names[sig];
  return "SIGUNKNOWN";
}

/* ---- cleanup, allocation ---- */

char *read_fd_all(int fd, size_t max, size_t *len, const char *what) {
  size_t cap = 4096, used = 0;
  char *buf = xmalloc(cap + 1);
  for (;;) {
    if (used == cap) {
      if (cap >= max) die("%s is larger than %zu bytes", what, max);
      cap = cap * 2 > max ? max : cap * 2;
      buf = xrealloc(buf, cap + 1);
    }
    ssize_t n = read(fd, buf + used, cap - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      die_errno("read %s", what);
    }
    if (n == 0) break;
    used += (size_t)n;
  }
  buf[used] = '\0';
  *len = used;
  return buf;
}

void write_file(const char *path, const char *content) {
  autoclose int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) die_errno("open %s", path);
  if (!write_all(fd, content, strlen(content))) die_errno("write %s", path);
}

void set_cloexec(int fd) {
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) die_errno("fcntl fd %d", fd);
}

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

static void close_range_or_loop(unsigned lo, unsigned hi) {
  if (lo > hi) return;
  if (syscall(SYS_close_range, lo, hi, 0) == 0) return;
  if (errno != ENOSYS) die_errno("close_range %u..%u", lo, hi);
  /* Kernel < 5.9: close one by one up to the soft fd limit. */
  long max = sysconf(_SC_OPEN_MAX);
  if (max < 0 || max > 65536) max = 65536;
  for (unsigned fd = lo; fd <= hi && fd < (unsigned)max; fd++) close((int)fd);
}

void close_fds_except(const int *keep, size_t n) {
  autofree int *sorted = xmalloc((n + 1) * sizeof *sorted);
  memcpy(sorted, keep, n * sizeof *keep);
  qsort(sorted, n, sizeof *sorted, cmp_int);
  unsigned lo = 3;
  for (size_t i = 0; i < n; i++) {
    if (sorted[i] < 3) continue;
    if ((unsigned)sorted[i] > lo) close_range_or_loop(lo, (unsigned)sorted[i] - 1);
    lo = (unsigned)sorted[i] + 1;
  }
  close_range_or_loop(lo, ~0U);
}
