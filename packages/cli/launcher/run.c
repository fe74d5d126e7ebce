/* run.c: runs the system as the normal path's runSystem does, from what the entry recorded: the
 * sandbox helper started with the spec on fd 3, its JSON status lines read from fd 4 and fd 5
 * held as the sync fd (when this process dies the helper takes the sandbox down), stdio
 * inherited; the instance registered once the command runs and removed when it ends; the
 * signals passed on or ignored as the entry says; and the exit status — the command's, or the
 * normal path's for a helper error, with the same text on stderr. */
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>

#include "launcher.h"

extern char **environ;

static volatile sig_atomic_t helper_pid;

static void forward_signal(int sig) {
  int saved = errno;
  if (helper_pid > 0) kill((pid_t)helper_pid, sig);
  errno = saved;
}

/* A pipe whose ends are above the fds the helper gets (3..5), so setting those up clobbers none. */
static void high_pipe(int fds[2]) {
  int raw[2];
  if (pipe2(raw, O_CLOEXEC) < 0) die_errno("pipe");
  for (int i = 0; i < 2; i++) {
    fds[i] = fcntl(raw[i], F_DUPFD_CLOEXEC, 10);
    if (fds[i] < 0) die_errno("fcntl F_DUPFD_CLOEXEC");
    close(raw[i]);
  }
}

static pid_t start_helper(const struct entry *e, int spec_fd, int status_fd, int sync_fd) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  if (posix_spawn_file_actions_init(&actions) != 0 || posix_spawnattr_init(&attr) != 0)
    die("posix_spawn init");
  int err = posix_spawn_file_actions_adddup2(&actions, spec_fd, 3);
  if (err == 0) err = posix_spawn_file_actions_adddup2(&actions, status_fd, 4);
  if (err == 0) err = posix_spawn_file_actions_adddup2(&actions, sync_fd, 5);
  if (err == 0) err = posix_spawn_file_actions_addchdir_np(&actions, "/");
  /* As child_process.spawn: every signal at its default and none blocked in the helper. */
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  if (err == 0) err = posix_spawnattr_setsigmask(&attr, &none);
  if (err == 0) err = posix_spawnattr_setsigdefault(&attr, &all);
  if (err == 0)
    err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  if (err != 0) {
    errno = err;
    die_errno("prepare the sandbox helper");
  }
  char *argv[] = {(char *)e->helper, "--spec-fd", "3", "--status-fd", "4", "--sync-fd", "5", NULL};
  pid_t pid;
  err = posix_spawn(&pid, e->helper, &actions, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err != 0) {
    errno = err;
    die_errno("cannot start the helper %s", e->helper);
  }
  return pid;
}

/* ---- the instance record (instances.ts writes the same fields) ---- */

struct instance {
  char *file;
};

static void instance_id(const struct entry *e, char *out, size_t size) {
  unsigned char random[3] = {0};
  if (getrandom(random, sizeof random, GRND_NONBLOCK) != (ssize_t)sizeof random) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    unsigned v = (unsigned)t.tv_nsec ^ (unsigned)getpid();
    memcpy(random, &v, sizeof random);
  }
  snprintf(out, size, "%s-%02x%02x%02x", e->instance_system, random[0], random[1], random[2]);
}

static unsigned long long process_start(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  autofree char *text = read_file(path, 4096, NULL);
  char *close = text != NULL ? strrchr(text, ')') : NULL;
  if (close == NULL || close[1] != ' ' || close[2] == 'Z' || close[2] == 'X') return 0;
  char *p = close + 2;
  for (int field = 0; field < 19 && p != NULL; field++) {
    p = strchr(p, ' ');
    if (p != NULL) p++;
  }
  return p != NULL ? strtoull(p, NULL, 10) : 0;
}

/* new Date().toISOString(): 2026-12-07T10:11:12.345Z. By hand: gmtime_r would read the time zone
 * file first, which a UTC date does not need. */
static void iso_now(char out[64]) {
  struct timespec t;
  if (clock_gettime(CLOCK_REALTIME, &t) < 0) die_errno("the time");
  long long days = t.tv_sec / 86400, secs = t.tv_sec % 86400;
  /* Civil date from days since 1970-01-01 (proleptic Gregorian, eras of 400 years). */
  long long z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
  long long doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  long long day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
  long long year = yoe + era * 400 + (month <= 2);
  snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (int)(year % 10000), (int)month,
           (int)day, (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60),
           (int)(t.tv_nsec / 1000000) % 1000);
}

/* Written atomically (temp + rename), as writeFileAtomic without fsync. */
static struct instance register_instance(const struct entry *e, pid_t pid, long init_pid) {
  char id[256], escaped[512], started[64];
  instance_id(e, id, sizeof id);
  if (!json_escape(escaped, sizeof escaped, id)) die("the system name is too long");
  iso_now(started);
  autofree char *text = xasprintf(
      "{\"id\":\"%s\",\"pid\":%d,\"initPid\":%ld,\"startedAt\":\"%s\",\"pidStart\":%llu,%s}\n",
      escaped, (int)pid, init_pid, started, process_start(pid), e->instance_fields);
  struct instance out = {xasprintf("%s/%s.json", e->instance_dir, id)};
  autofree char *temp = xasprintf("%s.%d.fast.tmp", out.file, (int)getpid());
  autoclose int fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) die_errno("cannot register the instance in %s", e->instance_dir);
  if (!write_all(fd, text, strlen(text))) die_errno("cannot write %s", temp);
  if (rename(temp, out.file) < 0) die_errno("cannot register the instance %s", out.file);
  return out;
}

/* ---- status lines ---- */

struct status {
  bool started, exited, failed;
  long init_pid;
  int code;
  char *message;
};

struct line_fields {
  char event[16];
  long init_pid;
  int code;
  bool have_code;
  char *message;
};

static void status_field(void *ctx, const char *key, const char *value, bool is_string) {
  struct line_fields *f = ctx;
  if (is_string && strcmp(key, "event") == 0)
    snprintf(f->event, sizeof f->event, "%s", value);
  else if (!is_string && strcmp(key, "initPid") == 0)
    f->init_pid = strtol(value, NULL, 10);
  else if (!is_string && strcmp(key, "code") == 0)
    f->have_code = (f->code = (int)strtol(value, NULL, 10)) >= 0;
  else if (is_string && strcmp(key, "message") == 0) {
    free(f->message);
    f->message = xstrdup(value);
  }
}

/* One status line; a line that is not ours is skipped, as helper-process.ts does. */
static void status_line(const char *line, struct status *s, const struct entry *e, pid_t pid,
                        struct instance *instance) {
  struct line_fields f = {.event = "", .init_pid = -1};
  if (!json_object_fields(line, status_field, &f)) return;
  if (strcmp(f.event, "started") == 0 && !s->started) {
    s->started = true;
    s->init_pid = f.init_pid;
    *instance = register_instance(e, pid, f.init_pid);
  } else if (strcmp(f.event, "exit") == 0 && f.have_code) {
    s->exited = true;
    s->code = f.code;
  } else if (strcmp(f.event, "error") == 0) {
    s->failed = true;
    s->code = f.have_code ? f.code : 125;
    free(s->message);
    s->message = f.message != NULL ? f.message : xstrdup("");
    return;
  }
  free(f.message);
}

/* What the normal path prints for a helper error (commandError, then report), and its status. */
static int report_error(const struct entry *e, int status, const char *message) {
  const struct error_text *t = NULL;
  for (size_t i = 0; i < e->n_errors; i++) {
    if (e->errors[i].status == status) t = &e->errors[i];
    if (t == NULL && e->errors[i].status == 125) t = &e->errors[i];
  }
  if (t == NULL) t = &e->errors[0];
  autofree char *text =
      t->with_message ? xasprintf("%s%s%s", t->prefix, message, t->suffix) : xstrdup(t->prefix);
  (void)!write_all(STDERR_FILENO, text, strlen(text));
  return t->exit;
}

int run_sandbox(const struct entry *e) {
  int spec[2], status_pipe[2], sync[2];
  high_pipe(spec);
  high_pipe(status_pipe);
  high_pipe(sync);
  /* Signals wait until they can be passed on; a helper that dies early must not kill us (EPIPE). */
  sigset_t handled, saved;
  sigemptyset(&handled);
  for (size_t i = 0; i < e->n_forward; i++) sigaddset(&handled, e->forward[i]);
  for (size_t i = 0; i < e->n_ignore; i++) sigaddset(&handled, e->ignore[i]);
  if (sigprocmask(SIG_BLOCK, &handled, &saved) < 0) die_errno("sigprocmask");
  if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) die_errno("ignore SIGPIPE");

  pid_t pid = start_helper(e, spec[0], status_pipe[1], sync[0]);
  helper_pid = pid;
  close(spec[0]);
  close(status_pipe[1]);
  close(sync[0]);
  struct sigaction forward = {.sa_handler = forward_signal, .sa_flags = SA_RESTART};
  struct sigaction ignore = {.sa_handler = SIG_IGN};
  sigemptyset(&forward.sa_mask);
  sigemptyset(&ignore.sa_mask);
  for (size_t i = 0; i < e->n_forward; i++)
    if (sigaction(e->forward[i], &forward, NULL) < 0) die_errno("sigaction");
  for (size_t i = 0; i < e->n_ignore; i++)
    if (sigaction(e->ignore[i], &ignore, NULL) < 0) die_errno("sigaction");
  if (sigprocmask(SIG_SETMASK, &saved, NULL) < 0) die_errno("sigprocmask");

  /* The helper reads the whole spec first; a short write means it died, which its exit says. */
  (void)write_all(spec[1], e->spec, e->spec_len);
  close(spec[1]);

  struct status s = {0};
  struct instance instance = {NULL};
  char buf[8192];
  size_t have = 0;
  for (;;) {
    ssize_t n = read(status_pipe[0], buf + have, sizeof buf - 1 - have);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    have += (size_t)n;
    buf[have] = '\0';
    char *line = buf, *newline;
    while ((newline = strchr(line, '\n')) != NULL) {
      *newline = '\0';
      status_line(line, &s, e, pid, &instance);
      line = newline + 1;
    }
    have = strlen(line);
    memmove(buf, line, have);
    if (have == sizeof buf - 1) have = 0; /* a line this long is not ours */
  }
  close(status_pipe[0]);
  int wstatus;
  while (waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) die_errno("waitpid");
  }
  helper_pid = 0;
  if (instance.file != NULL) (void)unlink(instance.file);

  /* The same order of answers as helper-process.ts's settle(). */
  if (s.failed) return report_error(e, s.code, s.message);
  if (s.exited) return s.code;
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 125;
  if (code >= 125 && code <= 127 && !s.started) {
    char message[96];
    snprintf(message, sizeof message, "the helper exited with %d without a status (see its stderr)",
             code);
    return report_error(e, code, message);
  }
  return code;
}
