/* run.c: runs the system as the normal path's runSystem does, from what the entry recorded: the
 * sandbox helper started with the spec on fd 3, its JSON status lines read from fd 4 and fd 5
 * held as the sync fd (when this process dies the helper takes the sandbox down), stdio
 * inherited; the slot and the instance taken once the command runs, released when it ends; the
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
                        struct holds *h) {
  struct line_fields f = {.event = "", .init_pid = -1};
  if (!json_object_fields(line, status_field, &f)) return;
  if (strcmp(f.event, "started") == 0 && !s->started) {
    s->started = true;
    s->init_pid = f.init_pid;
    holds_started(e, h, pid, f.init_pid);
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

int run_sandbox(const struct entry *e, struct holds *h) {
  /* The recorded spec, with this run's instance id where the recorded run had its own. */
  size_t spec_len;
  autofree char *spec_bytes = replace_all(e->spec, e->spec_len, INSTANCE_ID, h->id, &spec_len);
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
  (void)write_all(spec[1], spec_bytes, spec_len);
  close(spec[1]);

  struct status s = {0};
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
      status_line(line, &s, e, pid, h);
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
  holds_release(e, h);

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
