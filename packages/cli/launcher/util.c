/* util.c: miss(), which hands the command to the normal path (node on the bundle, with the same
 * arguments and environment), the debug notes, and checked allocation and I/O helpers. */
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "launcher.h"

static char **fall_argv;
static const char *fall_node, *fall_script;
static bool fall_debug;

void fallthrough_init(char **argv, const char *node, const char *script, bool debug) {
  fall_argv = argv;
  fall_node = node;
  fall_script = script;
  fall_debug = debug;
}

static void vnote(const char *prefix, const char *fmt, va_list ap) PRINTF(2, 0);
static void vnote(const char *prefix, const char *fmt, va_list ap) {
  char line[1024];
  int n = snprintf(line, sizeof line, "castle: %s", prefix);
  if (n < 0) return;
  int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  if (m < 0) return;
  size_t len = strlen(line);
  if (len + 1 < sizeof line) line[len++] = '\n';
  (void)!write(STDERR_FILENO, line, len);
}

void debug_note(const char *fmt, ...) {
  if (!fall_debug) return;
  va_list ap;
  va_start(ap, fmt);
  vnote("fast path: ", fmt, ap);
  va_end(ap);
}

void miss(const char *fmt, ...) {
  if (fall_debug) {
    va_list ap;
    va_start(ap, fmt);
    vnote("fast path: not taken: ", fmt, ap);
    va_end(ap);
  }
  if (fall_node == NULL) die("cannot find node to run Castle (put Node 20 on PATH)");
  size_t argc = 0;
  while (fall_argv[argc] != NULL) argc++;
  /* node <bundle>/castle.cjs <the same arguments> */
  char **argv = calloc(argc + 2, sizeof *argv);
  if (argv == NULL) die("out of memory");
  argv[0] = (char *)fall_node;
  argv[1] = (char *)fall_script;
  for (size_t i = 1; i < argc; i++) argv[i + 1] = fall_argv[i];
  execv(fall_node, argv);
  die_errno("cannot start %s", fall_node);
}

char *xstrdup(const char *s) {
  char *p = strdup(s);
  if (p == NULL) die("out of memory");
  return p;
}

char *xasprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *out = NULL;
  int n = vasprintf(&out, fmt, ap);
  va_end(ap);
  if (n < 0) die("out of memory");
  return out;
}

void *xrealloc(void *p, size_t size) {
  void *q = realloc(p, size == 0 ? 1 : size);
  if (q == NULL) die("out of memory");
  return q;
}

char *read_file(const char *path, size_t max, size_t *len) {
  autoclose int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  if (fstat(fd, &st) < 0) return NULL;
  if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
    errno = EFBIG;
    return NULL;
  }
  /* Read to the end: the size is only a hint (files in /proc say 0). */
  size_t cap = (size_t)st.st_size + 1 > 4096 ? (size_t)st.st_size + 1 : 4096, got = 0;
  char *buf = xrealloc(NULL, cap + 1);
  for (;;) {
    if (got == cap) {
      if (cap > max) {
        free(buf);
        errno = EFBIG;
        return NULL;
      }
      cap *= 2;
      buf = xrealloc(buf, cap + 1);
    }
    ssize_t n = read(fd, buf + got, cap - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      free(buf);
      errno = err;
      return NULL;
    }
    if (n == 0) break;
    got += (size_t)n;
  }
  if (got > max) {
    free(buf);
    errno = EFBIG;
    return NULL;
  }
  buf[got] = '\0';
  if (len != NULL) *len = got;
  return buf;
}

bool write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= (size_t)n;
  }
  return true;
}

void closep(int *fd) {
  if (*fd >= 0) {
    int saved = errno;
    close(*fd);
    errno = saved;
    *fd = -1;
  }
}

void freep(void *p) {
  free(*(void **)p);
}
