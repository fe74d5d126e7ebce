/* util.c: miss(), which hands the command to the normal path (node on the bundle, with the same
 * arguments and environment), the debug notes, and checked allocation and I/O helpers. */
#include <fcntl.h>
#include <stdarg.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

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

bool process_start(pid_t pid, unsigned long long *start) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  autofree char *text = read_file(path, 4096, NULL);
  char *close_paren = text != NULL ? strrchr(text, ')') : NULL;
  if (close_paren == NULL || close_paren[1] != ' ') return false;
  char *p = close_paren + 2;
  if (*p == 'Z' || *p == 'X') return false;
  for (int field = 0; field < 19; field++) {
    p = strchr(p, ' ');
    if (p == NULL) return false;
    p++;
  }
  *start = strtoull(p, NULL, 10);
  return true;
}

bool write_atomic(const char *path, const char *temp, const char *text) {
  autoclose int fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  if (!write_all(fd, text, strlen(text)) || rename(temp, path) < 0) {
    int err = errno;
    (void)unlink(temp);
    errno = err;
    return false;
  }
  return true;
}

void unique_hex(char out[9]) {
  uint32_t v = 0;
  if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    v = (uint32_t)t.tv_nsec ^ ((uint32_t)getpid() << 16);
  }
  snprintf(out, 9, "%08x", v);
}

/* new Date().toISOString(): 2026-12-07T10:11:12.345Z. By hand: gmtime_r would read the time zone
 * file first, which a UTC date does not need. */
void iso_now(char out[64]) {
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

char *replace_all(const char *text, size_t len, const char *from, const char *to, size_t *out_len) {
  size_t from_len = strlen(from), to_len = strlen(to), count = 0;
  for (const char *p = text; (p = memmem(p, len - (size_t)(p - text), from, from_len)) != NULL;
       p += from_len)
    count++;
  size_t size = len - count * from_len + count * to_len;
  char *out = xrealloc(NULL, size + 1), *o = out;
  const char *p = text, *end = text + len;
  for (const char *hit; (hit = memmem(p, (size_t)(end - p), from, from_len)) != NULL;
       p = hit + from_len) {
    memcpy(o, p, (size_t)(hit - p));
    o += hit - p;
    memcpy(o, to, to_len);
    o += to_len;
  }
  memcpy(o, p, (size_t)(end - p));
  out[size] = '\0';
  *out_len = size;
  return out;
}

