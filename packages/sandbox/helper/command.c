/* command.c: the last steps in the command's process (pid 2), between fork and exec: a clean
 * signal state, its own session (and the pty as controlling terminal in tty mode), rlimits, a
 * fresh session keyring, capabilities, uid/gid, cwd, no inherited fds, no_new_privs, and the
 * seccomp filter last. Failures are reported through the exec pipe (die_sink_report), so init
 * can tell "not found" (127) from a command that itself exits 127. */
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "kabi.h"
#include "sandbox.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static void reset_signals(void) {
  /* Dispositions first (an ignored signal stays ignored across exec), then the mask. */
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    if (signal(sig, SIG_DFL) == SIG_ERR && errno != EINVAL) die_errno("reset signal %d", sig);
  }
  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, NULL) < 0) die_errno("sigprocmask");
}

static void apply_rlimits(const struct spec *spec) {
  for (size_t i = 0; i < spec->nrlimits; i++) {
    const struct rlimit_op *r = &spec->rlimits[i];
    struct rlimit lim = {
        .rlim_cur = r->soft == UINT64_MAX ? RLIM_INFINITY : (rlim_t)r->soft,
        .rlim_max = r->hard == UINT64_MAX ? RLIM_INFINITY : (rlim_t)r->hard,
    };
    if (setrlimit(r->resource, &lim) < 0)
      die_hint(errno,
               errno == EPERM ? "a hard limit cannot be raised above the caller's own" : NULL,
               "setrlimit %s", r->name);
  }
}

static void join_session_keyring(void) {
  /* The caller's keyring would otherwise be shared with the sandbox. Quota and permission
   * errors are tolerated (the kernel may limit keyrings per user), not a missing keyring. */
  if (syscall(SYS_keyctl, CASTLE_KEYCTL_JOIN_SESSION_KEYRING, NULL, 0, 0, 0) >= 0) return;
  if (errno == ENOSYS || errno == EDQUOT || errno == EACCES || errno == EPERM) return;
  die_errno("join a new session keyring");
}

static void set_ids(const struct spec *spec, const struct idmap *map) {
  if (!map->range) return; /* only 0 exists inside and we already are 0 */
  if (setgroups(0, NULL) < 0) die_errno("setgroups");
  if (setresgid(spec->gid, spec->gid, spec->gid) < 0) die_errno("setresgid %u", spec->gid);
  if (setresuid(spec->uid, spec->uid, spec->uid) < 0) die_errno("setresuid %u", spec->uid);
}

static const char *env_path(const struct spec *spec) {
  for (size_t i = 0; i < spec->nenv; i++)
    if (strncmp(spec->env[i], "PATH=", 5) == 0) return spec->env[i] + 5;
  return DEFAULT_PATH;
}

/* execvpe with the spec's PATH (glibc's would use ours), reporting 127 / 126 like a shell. */
static NORETURN void exec_command(const struct spec *spec) {
  char *const *argv = (char *const *)spec->argv;
  char *const *envp = (char *const *)spec->env;
  const char *file = spec->argv[0];
  if (strchr(file, '/') != NULL) {
    execve(file, argv, envp);
    int err = errno;
    if (err == ENOENT || err == ENOTDIR)
      die_code(EXIT_NOTFOUND, err, NULL, "exec %s", file);
    die_code(EXIT_NOEXEC, err, err == EACCES ? "is it a regular file with the x bit?" : NULL,
             "exec %s", file);
  }
  const char *path = env_path(spec);
  size_t flen = strlen(file);
  int last = ENOENT;
  bool denied = false;
  for (const char *p = path;; p++) {
    const char *end = strchrnul(p, ':');
    size_t dlen = (size_t)(end - p);
    char full[4096];
    if (dlen + flen + 2 <= sizeof full) {
      if (dlen == 0) snprintf(full, sizeof full, "%s", file);
      else snprintf(full, sizeof full, "%.*s/%s", (int)dlen, p, file);
      execve(full, argv, envp);
      if (errno == EACCES) denied = true;
      else if (errno != ENOENT && errno != ENOTDIR) last = errno;
    }
    if (*end == '\0') break;
    p = end;
  }
  if (denied)
    die_code(EXIT_NOEXEC, EACCES, "is it a regular file with the x bit?", "exec %s", file);
  if (last != ENOENT) die_code(EXIT_NOEXEC, last, NULL, "exec %s", file);
  die_code(EXIT_NOTFOUND, ENOENT, NULL, "exec %s (PATH=%.200s)", file, path);
}

/* An entered command has no init of its own above it: it dies with the joiner that forked it.
 * The joiner may already be gone; then nobody reads the exec pipe, which poll reports. */
static void die_with_parent(int exec_fd) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) die_errno("PR_SET_PDEATHSIG");
  struct pollfd pipe_end = {exec_fd, POLLOUT, 0};
  if (poll(&pipe_end, 1, 0) > 0 && (pipe_end.revents & POLLERR)) _exit(EXIT_SETUP);
}

void command_exec(const struct spec *spec, const struct idmap *map, int tty_master,
                  int exec_fd) {
  reset_signals();
  /* A session of its own: without a tty it then has no controlling terminal at all. */
  if (setsid() < 0) die_errno("setsid");
  if (tty_master >= 0) tty_make_controlling(tty_master);
  apply_rlimits(spec);
  join_session_keyring();
  /* Bounding set while we still hold CAP_SETPCAP, ids, then what the process keeps. */
  caps_drop_bounding(spec->keep_caps);
  set_ids(spec, map);
  caps_set_process(spec->uid == 0 ? spec->keep_caps : 0);
  /* After the uid change, which clears the parent-death signal. */
  if (spec->enter_pid != 0) die_with_parent(exec_fd);
  if (chdir(spec->cwd) < 0) die_errno("chdir %s", spec->cwd);
  /* Only stdio survives; the exec pipe is CLOEXEC and closes by itself on exec. */
  close_fds_except(&exec_fd, 1);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) die_errno("PR_SET_NO_NEW_PRIVS");
  seccomp_install();
  exec_command(spec);
}
