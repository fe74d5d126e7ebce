/*
 * castle-treeutil serve: a long-lived helper for one Node process, so that Castle does not fork
 * its own (large) process for every small job. Forking copies the parent's page tables: from a
 * Node process of a few hundred MB that blocks its event loop for 10-60 ms, while this process
 * is ~1 MB and spawns with posix_spawn (vfork) in well under a millisecond.
 *
 * Requests on stdin, each a list of NUL-terminated fields: <id> <op> <nargs> <arg>...
 *   fifo                       make a FIFO (mode 0600) in this helper's private directory
 *   syncfs <path>              syncfs(2) on the filesystem holding path
 *   run <in> <out> <argc> <argv...> <input...>
 *                              posix_spawn argv[0] (an absolute path) with stdin <in> = "null",
 *                              "input" (the remaining fields, each followed by a NUL) or
 *                              "path:<p>", stdout <out> = "null", "capture" or "path:<p>"
 *                              (opened O_WRONLY, never created), stderr captured; a FIFO given as
 *                              a path gets a 1 MiB buffer
 *   kill <pid>                 SIGKILL a child this helper started and has not reaped
 *   lock <path> <ex|sh>        open path (created 0644 if missing) and flock it exclusive or
 *                              shared, waiting as long as it takes; replies ok <handle>. The lock
 *                              is held by this helper until unlock, or until it exits (Castle
 *                              exited or died): the kernel drops it with the helper, never stale
 *   unlock <handle>            release a lock this helper holds
 * Replies on stdout, each <id> NUL <kind> NUL <length> NUL <payload>, in any order:
 *   ok <result> | err <message> | started <pid> |
 *   exit <code> NUL <signal> NUL <stdout length> NUL <stdout> <stderr (first 4 KiB)>
 *
 * Slow jobs (run, syncfs) each get a thread; replies are written whole under one lock. Every fd
 * is O_CLOEXEC, so no child inherits another job's pipe (which would hide its end of file). When
 * stdin closes (Castle exited or died), children still running are killed, the FIFO directory is
 * removed and the helper exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "treeutil.h"

#define MAX_FIELDS 4096
#define STDERR_KEEP 4096
#define PIPE_BYTES (1 << 20)

extern char **environ;

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static char fifo_dir[PATH_MAX];
static unsigned long fifo_count;

/* Lock files held for Castle (fds from lock requests), so unlock closes only those. */
static int lock_fds[1024];
static size_t n_lock_fds;

/* Children started and not yet reaped (for kill and for the clean-up at exit). */
static pid_t children[1024];
static size_t n_children;

struct request {
  char *id;
  char **args;
  size_t nargs;
};

static void cleanup_and_exit(int code) {
  pthread_mutex_lock(&state_lock);
  for (size_t i = 0; i < n_children; i++) kill(children[i], SIGKILL);
  if (fifo_dir[0]) {
    char path[PATH_MAX + 32];
    for (unsigned long i = 0; i < fifo_count; i++) {
      snprintf(path, sizeof path, "%s/%lu", fifo_dir, i);
      unlink(path);
    }
    rmdir(fifo_dir);
  }
  _exit(code);
}

static void write_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) cleanup_and_exit(0); /* Castle is gone. */
    p += n;
    len -= (size_t)n;
  }
}

/* One reply: id, kind, length, then head and tail as one payload. */
static void reply2(const char *id, const char *kind, const void *head, size_t head_len,
                   const void *tail, size_t tail_len) {
  char prefix[128];
  int n = snprintf(prefix, sizeof prefix, "%s%c%s%c%zu%c", id, 0, kind, 0, head_len + tail_len, 0);
  if (n < 0 || (size_t)n >= sizeof prefix) cleanup_and_exit(1);
  pthread_mutex_lock(&out_lock);
  write_all(STDOUT_FILENO, prefix, (size_t)n);
  if (head_len) write_all(STDOUT_FILENO, head, head_len);
  if (tail_len) write_all(STDOUT_FILENO, tail, tail_len);
  pthread_mutex_unlock(&out_lock);
}

static void reply(const char *id, const char *kind, const char *text) {
  reply2(id, kind, text, strlen(text), NULL, 0);
}

__attribute__((format(printf, 2, 3))) static void reply_err(const char *id, const char *fmt, ...) {
  char message[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  reply(id, "err", message);
}

static void free_request(struct request *req) {
  for (size_t i = 0; i < req->nargs; i++) free(req->args[i]);
  free(req->args);
  free(req->id);
  free(req);
}

static int track(pid_t pid) {
  pthread_mutex_lock(&state_lock);
  int ok = n_children < sizeof children / sizeof children[0];
  if (ok) children[n_children++] = pid;
  pthread_mutex_unlock(&state_lock);
  return ok;
}

/* Forgets pid; returns whether it was tracked. With kill_it, kills it first (under the lock, so
 * the pid cannot have been reaped and reused meanwhile). */
static int untrack(pid_t pid, int kill_it) {
  int found = 0;
  pthread_mutex_lock(&state_lock);
  for (size_t i = 0; i < n_children; i++) {
    if (children[i] != pid) continue;
    found = 1;
    if (kill_it)
      kill(pid, SIGKILL);
    else
      children[i] = children[--n_children];
    break;
  }
  pthread_mutex_unlock(&state_lock);
  return found;
}

static void op_fifo(const char *id) {
  char path[PATH_MAX + 32];
  pthread_mutex_lock(&state_lock);
  if (!fifo_dir[0]) {
    const char *tmp = getenv("TMPDIR");
    snprintf(fifo_dir, sizeof fifo_dir, "%s/castle-treeutil-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(fifo_dir)) {
      int err = errno;
      fifo_dir[0] = '\0';
      pthread_mutex_unlock(&state_lock);
      reply_err(id, "cannot make a private directory for fifos: %s", strerror(err));
      return;
    }
  }
  snprintf(path, sizeof path, "%s/%lu", fifo_dir, fifo_count++);
  pthread_mutex_unlock(&state_lock);
  if (mkfifo(path, 0600) != 0) {
    reply_err(id, "cannot make fifo %s: %s", path, strerror(errno));
    return;
  }
  reply(id, "ok", path);
}

static void *op_syncfs(void *arg) {
  struct request *req = arg;
  int fd = open(req->args[0], O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    reply_err(req->id, "cannot open %s: %s", req->args[0], strerror(errno));
  else if (syncfs(fd) != 0)
    reply_err(req->id, "syncfs %s: %s", req->args[0], strerror(errno));
  else
    reply(req->id, "ok", "");
  if (fd >= 0) close(fd);
  free_request(req);
  return NULL;
}

static void *op_lock(void *arg) {
  struct request *req = arg;
  int how = strcmp(req->args[1], "sh") == 0 ? LOCK_SH : LOCK_EX;
  int fd = open(req->args[0], O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
  if (fd < 0) {
    reply_err(req->id, "cannot open lock file %s: %s", req->args[0], strerror(errno));
    free_request(req);
    return NULL;
  }
  int rc;
  while ((rc = flock(fd, how)) != 0 && errno == EINTR)
    ;
  if (rc != 0) {
    reply_err(req->id, "cannot lock %s: %s", req->args[0], strerror(errno));
    close(fd);
    free_request(req);
    return NULL;
  }
  pthread_mutex_lock(&state_lock);
  int tracked = n_lock_fds < sizeof lock_fds / sizeof lock_fds[0];
  if (tracked) lock_fds[n_lock_fds++] = fd;
  pthread_mutex_unlock(&state_lock);
  if (!tracked) {
    close(fd);
    reply_err(req->id, "too many locks held");
  } else {
    char handle[16];
    snprintf(handle, sizeof handle, "%d", fd);
    reply(req->id, "ok", handle);
  }
  free_request(req);
  return NULL;
}

static void op_unlock(const char *id, const char *handle) {
  int fd = (int)strtol(handle, NULL, 10);
  int found = 0;
  pthread_mutex_lock(&state_lock);
  for (size_t i = 0; i < n_lock_fds; i++) {
    if (lock_fds[i] != fd) continue;
    lock_fds[i] = lock_fds[--n_lock_fds];
    close(fd);
    found = 1;
    break;
  }
  pthread_mutex_unlock(&state_lock);
  if (found)
    reply(id, "ok", "");
  else
    reply_err(id, "no lock %s is held", handle);
}

/* Opens a stdio spec for the child; *pipe_end gets the parent's end for "input"/"capture". */
static int open_stdio(const char *spec, int for_write, int *pipe_end, const char **why) {
  *pipe_end = -1;
  if (strcmp(spec, "null") == 0)
    return open("/dev/null", (for_write ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
  if (strcmp(spec, for_write ? "capture" : "input") == 0) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
    *pipe_end = for_write ? fds[0] : fds[1];
    return for_write ? fds[1] : fds[0];
  }
  if (strncmp(spec, "path:", 5) == 0) {
    int fd = open(spec + 5, (for_write ? O_WRONLY : O_RDONLY) | O_CLOEXEC | O_NOCTTY);
    if (fd >= 0) (void)fcntl(fd, F_SETPIPE_SZ, PIPE_BYTES); /* Fails harmlessly on files. */
    return fd;
  }
  *why = "bad stdio spec";
  errno = EINVAL;
  return -1;
}

struct buffer {
  char *data;
  size_t len, cap, keep;
};

/* Reads what is available from fd into buf (keeping at most buf->keep bytes); 0 at end. */
static int drain(int fd, struct buffer *buf) {
  char chunk[65536];
  ssize_t n = read(fd, chunk, sizeof chunk);
  if (n < 0) return errno == EINTR || errno == EAGAIN ? 1 : 0;
  if (n == 0) return 0;
  size_t take = (size_t)n;
  if (buf->keep && buf->len + take > buf->keep) take = buf->keep - buf->len;
  if (buf->len + take > buf->cap) {
    size_t cap = buf->cap ? buf->cap : 65536;
    while (cap < buf->len + take) cap *= 2;
    char *grown = realloc(buf->data, cap);
    if (!grown) cleanup_and_exit(1);
    buf->data = grown;
    buf->cap = cap;
  }
  memcpy(buf->data + buf->len, chunk, take);
  buf->len += take;
  return 1;
}

static void *op_run(void *arg) {
  struct request *req = arg;
  const char *why = NULL;
  int in_end = -1, out_end = -1, err_pipe[2] = {-1, -1};
  int child_in = -1, child_out = -1;
  struct buffer out = {0}, err = {0, 0, 0, STDERR_KEEP};
  char *input = NULL;
  size_t input_len = 0, input_done = 0;
  pid_t pid = -1;

  size_t argc = req->nargs >= 3 ? strtoul(req->args[2], NULL, 10) : 0;
  if (req->nargs < 4 || argc == 0 || argc > req->nargs - 3 || req->args[3][0] != '/') {
    reply_err(req->id, "bad run request");
    goto done;
  }
  child_in = open_stdio(req->args[0], 0, &in_end, &why);
  if (child_in < 0) {
    reply_err(req->id, "cannot open stdin %s: %s", req->args[0], why ? why : strerror(errno));
    goto done;
  }
  child_out = open_stdio(req->args[1], 1, &out_end, &why);
  if (child_out < 0) {
    reply_err(req->id, "cannot open stdout %s: %s", req->args[1], why ? why : strerror(errno));
    goto done;
  }
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    reply_err(req->id, "pipe: %s", strerror(errno));
    goto done;
  }
  for (size_t i = 3 + argc; i < req->nargs; i++) input_len += strlen(req->args[i]) + 1;
  if (input_len) {
    input = malloc(input_len);
    if (!input) cleanup_and_exit(1);
    size_t at = 0;
    for (size_t i = 3 + argc; i < req->nargs; i++) {
      size_t len = strlen(req->args[i]) + 1;
      memcpy(input + at, req->args[i], len);
      at += len;
    }
  }

  char **argv = calloc(argc + 1, sizeof *argv);
  if (!argv) cleanup_and_exit(1);
  for (size_t i = 0; i < argc; i++) argv[i] = req->args[3 + i];
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, child_in, STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, child_out, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  posix_spawnattr_init(&attr);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  /* Hold the state lock across the spawn so cleanup_and_exit cannot miss this child. */
  pthread_mutex_lock(&state_lock);
  int rc = posix_spawn(&pid, argv[0], &actions, &attr, argv, environ);
  pthread_mutex_unlock(&state_lock);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  free(argv);
  close(child_in);
  close(child_out);
  close(err_pipe[1]);
  child_in = child_out = err_pipe[1] = -1;
  if (rc != 0) {
    reply_err(req->id, "cannot run %s: %s", req->args[3], strerror(rc));
    goto done;
  }
  if (!track(pid)) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    reply_err(req->id, "too many children");
    goto done;
  }
  char pid_text[32];
  snprintf(pid_text, sizeof pid_text, "%d", (int)pid);
  reply(req->id, "started", pid_text);

  if (in_end >= 0 && input_len == 0) {
    close(in_end);
    in_end = -1;
  }
  if (in_end >= 0) (void)fcntl(in_end, F_SETFL, O_NONBLOCK);
  while (in_end >= 0 || out_end >= 0 || err_pipe[0] >= 0) {
    struct pollfd fds[3] = {
        {.fd = in_end, .events = POLLOUT},
        {.fd = out_end, .events = POLLIN},
        {.fd = err_pipe[0], .events = POLLIN},
    };
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (in_end >= 0 && fds[0].revents) {
      ssize_t n = write(in_end, input + input_done, input_len - input_done);
      if (n > 0) input_done += (size_t)n;
      if ((n < 0 && errno != EINTR && errno != EAGAIN) || input_done == input_len) {
        close(in_end);
        in_end = -1;
      }
    }
    if (out_end >= 0 && fds[1].revents && !drain(out_end, &out)) {
      close(out_end);
      out_end = -1;
    }
    if (err_pipe[0] >= 0 && fds[2].revents && !drain(err_pipe[0], &err)) {
      close(err_pipe[0]);
      err_pipe[0] = -1;
    }
  }
  /* Wait without reaping, forget the pid, then reap: a kill request can never hit a pid that
   * was reaped and reused meanwhile. */
  siginfo_t info;
  while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) < 0 && errno == EINTR)
    ;
  untrack(pid, 0);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  char head[96];
  int head_len =
      snprintf(head, sizeof head, "%d%c%d%c%zu%c", WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0,
               WIFSIGNALED(status) ? WTERMSIG(status) : 0, 0, out.len, 0);
  /* The payload is head, stdout, stderr: copy stdout and stderr together behind head. */
  char *body = malloc(out.len + err.len + 1);
  if (!body) cleanup_and_exit(1);
  if (out.len) memcpy(body, out.data, out.len);
  if (err.len) memcpy(body + out.len, err.data, err.len);
  reply2(req->id, "exit", head, (size_t)head_len, body, out.len + err.len);
  free(body);
done:;
  int leftover[] = {in_end, out_end, err_pipe[0], err_pipe[1], child_in, child_out};
  for (size_t i = 0; i < sizeof leftover / sizeof leftover[0]; i++)
    if (leftover[i] >= 0) close(leftover[i]);
  free(out.data);
  free(err.data);
  free(input);
  free_request(req);
  return NULL;
}

/* Reads one NUL-terminated field; NULL at a clean end of input. */
static char *next_field(void) {
  static char *line;
  static size_t cap;
  ssize_t n = getdelim(&line, &cap, '\0', stdin);
  if (n <= 0) return NULL;
  if (line[n - 1] != '\0') return NULL; /* Cut off mid-field: Castle died while writing. */
  return strdup(line);
}

static void start_thread(void *(*fn)(void *), struct request *req) {
  pthread_t thread;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  if (pthread_create(&thread, &attr, fn, req) != 0) {
    reply_err(req->id, "cannot start a thread: %s", strerror(errno));
    free_request(req);
  }
  pthread_attr_destroy(&attr);
}

void serve(void) {
  /* A child that dies must not kill the helper through a write to its stdin. */
  signal(SIGPIPE, SIG_IGN);
  reply("0", "ok", "castle-treeutil serve 2");
  for (;;) {
    struct request *req = calloc(1, sizeof *req);
    if (!req) cleanup_and_exit(1);
    req->id = next_field();
    char *op = req->id ? next_field() : NULL;
    char *count = op ? next_field() : NULL;
    if (!count) cleanup_and_exit(0);
    req->nargs = strtoul(count, NULL, 10);
    free(count);
    if (req->nargs > MAX_FIELDS) cleanup_and_exit(1);
    req->args = calloc(req->nargs + 1, sizeof *req->args);
    if (!req->args) cleanup_and_exit(1);
    for (size_t i = 0; i < req->nargs; i++) {
      req->args[i] = next_field();
      if (!req->args[i]) cleanup_and_exit(0);
    }
    if (strcmp(op, "fifo") == 0) {
      op_fifo(req->id);
      free_request(req);
    } else if (strcmp(op, "kill") == 0 && req->nargs == 1) {
      pid_t pid = (pid_t)strtol(req->args[0], NULL, 10);
      reply(req->id, untrack(pid, 1) ? "ok" : "err", "");
      free_request(req);
    } else if (strcmp(op, "lock") == 0 && req->nargs == 2) {
      start_thread(op_lock, req);
    } else if (strcmp(op, "unlock") == 0 && req->nargs == 1) {
      op_unlock(req->id, req->args[0]);
      free_request(req);
    } else if (strcmp(op, "syncfs") == 0 && req->nargs == 1) {
      start_thread(op_syncfs, req);
    } else if (strcmp(op, "run") == 0) {
      start_thread(op_run, req);
    } else {
      reply_err(req->id, "unknown request %s", op);
      free_request(req);
    }
    free(op);
  }
}
