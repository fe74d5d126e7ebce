/*
 * castle-treeutil pack <root>: writes the tar of the layer tree at root to stdout, byte for byte
 * what packages/cache/src/archive/pack.ts's writeTar writes (that file is the reference; a test
 * compares the two): entries in walkTree's order (names sorted as JavaScript sorts strings, by
 * UTF-16 code units; parents first), ustar headers with owners 0/0, no owner names, mtime 0, pax
 * records only for names or link targets over 100 bytes and sizes over 8 GiB, whiteouts (0/0
 * character devices) as `.wh.<name>` files, opaque directories followed by `<dir>/.wh..wh..opq`.
 *
 * Why here: walking, stat-ing and encoding ~10k entries costs Node about as much CPU as zstd's
 * reader thread, and on a small machine that CPU is taken from zstd. Bodies of large files are
 * spliced into stdout (a pipe: zstd's input), so they are never copied through user space.
 *
 * Exit 0 when the whole tar was written; 3 with "castle-treeutil: refusing <fifo|device|
 * reserved-name>: <path>" on stderr for an entry a layer cannot carry; 1 with one line otherwise.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "treeutil.h"

#define BLOCK 512
#define OUT_BYTES (1 << 20)
/* Bodies up to this size are read into the output buffer (one write for many small files);
 * larger ones are spliced. */
#define SMALL_FILE (64 << 10)
#define MAX_OCTAL_SIZE 077777777777ULL
#define WHITEOUT_PREFIX ".wh."
#define OPAQUE_MARKER ".wh..wh..opq"

static char out_buf[OUT_BYTES];
static size_t out_len;
static int can_splice = 1;

static void write_out(const char *p, size_t len) {
  while (len > 0) {
    ssize_t n = write(STDOUT_FILENO, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die("writing the archive: %s", n < 0 ? strerror(errno) : "short write");
    p += n;
    len -= (size_t)n;
  }
}

static void flush_out(void) {
  write_out(out_buf, out_len);
  out_len = 0;
}

/* Room for n more bytes in the output buffer (n <= OUT_BYTES). */
static char *room(size_t n) {
  if (out_len + n > OUT_BYTES) flush_out();
  return out_buf + out_len;
}

static void zeros(size_t n) {
  memset(room(n), 0, n);
  out_len += n;
}

static size_t padding(uint64_t size) {
  return (size_t)((BLOCK - size % BLOCK) % BLOCK);
}

/* A growable string: the relative path being visited, pax bodies. */
struct text {
  char *s;
  size_t len, cap;
};

static void text_add(struct text *t, const char *s, size_t n) {
  if (t->len + n + 1 > t->cap) {
    size_t cap = t->cap ? t->cap : 256;
    while (cap < t->len + n + 1) cap *= 2;
    char *grown = realloc(t->s, cap);
    if (!grown) die("out of memory");
    t->s = grown;
    t->cap = cap;
  }
  memcpy(t->s + t->len, s, n);
  t->len += n;
  t->s[t->len] = '\0';
}

/* Decodes one code point of valid UTF-8 (checked by valid_utf8) and advances p. */
static uint32_t next_code_point(const unsigned char **p) {
  const unsigned char *s = *p;
  uint32_t c = s[0];
  size_t n = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
  if (n == 2)
    c &= 0x1f;
  else if (n == 3)
    c &= 0x0f;
  else if (n == 4)
    c &= 0x07;
  for (size_t i = 1; i < n; i++) c = c << 6 | (s[i] & 0x3f);
  *p = s + n;
  return c;
}

/* Strict UTF-8 (no overlongs, surrogates or values past U+10FFFF): what Node decodes losslessly. */
static int valid_utf8(const char *text) {
  const unsigned char *s = (const unsigned char *)text;
  while (*s) {
    unsigned c = *s;
    size_t n = c < 0x80                  ? 1
               : (c >= 0xc2 && c < 0xe0) ? 2
               : (c >= 0xe0 && c < 0xf0) ? 3
               : (c >= 0xf0 && c < 0xf5) ? 4
                                         : 0;
    if (n == 0) return 0;
    for (size_t i = 1; i < n; i++)
      if ((s[i] & 0xc0) != 0x80) return 0;
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0) || (c == 0xf0 && s[1] < 0x90) ||
        (c == 0xf4 && s[1] >= 0x90))
      return 0;
    s += n;
  }
  return 1;
}

/* JavaScript's default sort order: strings compared by UTF-16 code units. */
static int compare_js(const void *a, const void *b) {
  const unsigned char *x = *(const unsigned char *const *)a;
  const unsigned char *y = *(const unsigned char *const *)b;
  for (;;) {
    if (!*x || !*y) return (*x != 0) - (*y != 0);
    uint32_t cx = next_code_point(&x);
    uint32_t cy = next_code_point(&y);
    if (cx == cy) continue;
    /* Past the BMP the first unit is a high surrogate, which sorts below U+E000..U+FFFF. */
    uint32_t ux = cx < 0x10000 ? cx : 0xd800 + ((cx - 0x10000) >> 10);
    uint32_t uy = cy < 0x10000 ? cy : 0xd800 + ((cy - 0x10000) >> 10);
    if (ux != uy) return ux < uy ? -1 : 1;
    return cx < cy ? -1 : 1;
  }
}

static void octal(char *at, size_t width, uint64_t value) {
  char digits[32];
  snprintf(digits, sizeof digits, "%0*llo", (int)(width - 1), (unsigned long long)value);
  memcpy(at, digits, width - 1);
  at[width - 1] = '\0';
}

/* text cut to at most 100 bytes as pack.ts's truncateUtf8 cuts it: no partial character, and no
 * U+FFFD at the end (JavaScript's decoder turns a cut character into those and they are dropped).
 */
static size_t truncated_length(const char *text, size_t len) {
  if (len <= 100) return len;
  size_t n = 100;
  while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80) n--;
  while (n >= 3 && memcmp(text + n - 3, "\xef\xbf\xbd", 3) == 0) n -= 3;
  return n;
}

static void header_block(char *at, const char *name, size_t name_len, unsigned mode, uint64_t size,
                         char typeflag, const char *link, size_t link_len) {
  memset(at, 0, BLOCK);
  memcpy(at, name, name_len);
  octal(at + 100, 8, mode & 07777);
  octal(at + 108, 8, 0);
  octal(at + 116, 8, 0);
  octal(at + 124, 12, size);
  octal(at + 136, 12, 0);
  memset(at + 148, ' ', 8);
  at[156] = typeflag;
  memcpy(at + 157, link, link_len);
  memcpy(at + 257,
         "ustar\0"
         "00",
         8);
  octal(at + 329, 8, 0);
  octal(at + 337, 8, 0);
  unsigned sum = 0;
  for (size_t i = 0; i < BLOCK; i++) sum += (unsigned char)at[i];
  char digits[16];
  snprintf(digits, sizeof digits, "%06o", sum);
  memcpy(at + 148, digits, 6);
  at[154] = '\0';
  at[155] = ' ';
}

static size_t decimal_digits(size_t n) {
  size_t d = 1;
  while (n >= 10) {
    n /= 10;
    d++;
  }
  return d;
}

/* One pax record, "<length> <key>=<value>\n", its length counting itself. */
static void pax_record(struct text *pax, const char *key, const char *value, size_t value_len) {
  size_t body = 1 + strlen(key) + 1 + value_len + 1;
  size_t length = body + decimal_digits(body);
  if (decimal_digits(length) + body != length) length = decimal_digits(length + 1) + body;
  char head[32];
  int n = snprintf(head, sizeof head, "%zu %s=", length, key);
  text_add(pax, head, (size_t)n);
  text_add(pax, value, value_len);
  text_add(pax, "\n", 1);
}

/* The header(s) of one entry, as pack.ts's encodeHeader writes them. */
static void header(const char *name, size_t name_len, unsigned mode, uint64_t size, char typeflag,
                   const char *link) {
  size_t link_len = link ? strlen(link) : 0;
  struct text pax = {0};
  if (name_len > 100) pax_record(&pax, "path", name, name_len);
  if (link_len > 100) pax_record(&pax, "linkpath", link, link_len);
  if (size > MAX_OCTAL_SIZE) {
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)size);
    pax_record(&pax, "size", digits, (size_t)n);
  }
  if (pax.len > 0) {
    if (pax.len > OUT_BYTES - 2 * BLOCK) die("a pax header of %zu bytes is too long", pax.len);
    size_t padded = BLOCK + pax.len + padding(pax.len);
    char *at = room(padded);
    header_block(at, "././@PaxHeader", 14, 0644, pax.len, 'x', "", 0);
    memcpy(at + BLOCK, pax.s, pax.len);
    memset(at + BLOCK + pax.len, 0, padding(pax.len));
    out_len += padded;
    free(pax.s);
  }
  header_block(room(BLOCK), name, truncated_length(name, name_len), mode,
               size > MAX_OCTAL_SIZE ? 0 : size, typeflag, link ? link : "",
               link ? truncated_length(link, link_len) : 0);
  out_len += BLOCK;
}

/* Opens a file for reading even when its mode denies its owner (store trees keep modes). */
static int open_readable(int dir, const char *name, mode_t mode) {
  int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
  int fd = openat(dir, name, flags);
  if (fd >= 0 || errno != EACCES) return fd;
  if (fchmodat(dir, name, (mode & 07777) | 0400, 0) != 0) return -1;
  fd = openat(dir, name, flags);
  int saved = errno;
  (void)fchmodat(dir, name, mode & 07777, 0);
  errno = saved;
  return fd;
}

static void changed(const char *path) {
  die("%s changed while it was being packed", path);
}

static void body(int dir, const char *name, const char *path, const struct stat *st) {
  uint64_t size = (uint64_t)st->st_size;
  int fd = open_readable(dir, name, st->st_mode);
  if (fd < 0) die_errno("cannot open %s", path);
  struct stat now;
  if (fstat(fd, &now) != 0 || !S_ISREG(now.st_mode) || (uint64_t)now.st_size < size) changed(path);
  uint64_t done = 0;
  if (size <= SMALL_FILE || !can_splice) {
    while (done < size) {
      size_t want = size - done < OUT_BYTES ? (size_t)(size - done) : OUT_BYTES;
      char *at = room(want);
      ssize_t n = read(fd, at, want);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) die_errno("reading %s", path);
      if (n == 0) changed(path);
      out_len += (size_t)n;
      done += (uint64_t)n;
    }
  } else {
    flush_out();
    while (done < size) {
      size_t want = size - done > (1u << 30) ? (1u << 30) : (size_t)(size - done);
      ssize_t n = splice(fd, NULL, STDOUT_FILENO, NULL, want, SPLICE_F_MORE);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EINVAL && done == 0) {
        /* stdout is not a pipe: copy through the buffer from here on. */
        can_splice = 0;
        close(fd);
        body(dir, name, path, st);
        return;
      }
      if (n < 0) die_errno("copying %s", path);
      if (n == 0) changed(path);
      done += (uint64_t)n;
    }
  }
  close(fd);
}

__attribute__((noreturn)) static void refuse(const char *what, const char *path) {
  die_code(3, 0, NULL, "refusing %s: %s", what, path);
}

static void pack_dir(int fd, struct text *path);

/* One entry of a directory: path holds its relative path. */
static void pack_entry(int dir, const char *name, struct text *path) {
  struct stat st;
  if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0) die_errno("cannot stat %s", path->s);
  int whiteout = S_ISCHR(st.st_mode) && st.st_rdev == 0;
  if (S_ISFIFO(st.st_mode)) refuse("fifo", path->s);
  if ((S_ISCHR(st.st_mode) && !whiteout) || S_ISBLK(st.st_mode)) refuse("device", path->s);
  if (S_ISSOCK(st.st_mode)) return; /* walkTree skips sockets. */
  if (strncmp(name, WHITEOUT_PREFIX, strlen(WHITEOUT_PREFIX)) == 0)
    refuse("reserved-name", path->s);
  unsigned mode = st.st_mode & 07777;
  if (S_ISDIR(st.st_mode)) {
    int sub = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) die_errno("cannot open directory %s", path->s);
    size_t len = path->len;
    text_add(path, "/", 1);
    header(path->s, path->len, mode, 0, '5', NULL);
    if (is_opaque(sub, NULL)) {
      text_add(path, OPAQUE_MARKER, strlen(OPAQUE_MARKER));
      header(path->s, path->len, 0, 0, '0', NULL);
    }
    path->len = len;
    path->s[path->len] = '\0';
    pack_dir(sub, path);
  } else if (S_ISREG(st.st_mode)) {
    header(path->s, path->len, mode, (uint64_t)st.st_size, '0', NULL);
    if (st.st_size > 0) body(dir, name, path->s, &st);
    zeros(padding((uint64_t)st.st_size));
  } else if (S_ISLNK(st.st_mode)) {
    size_t cap = (size_t)st.st_size + 1 > 256 ? (size_t)st.st_size + 1 : 256;
    char *target = NULL;
    for (;;) {
      target = realloc(target, cap);
      if (!target) die("out of memory");
      ssize_t n = readlinkat(dir, name, target, cap);
      if (n < 0) die_errno("cannot read symlink %s", path->s);
      if ((size_t)n < cap) {
        target[n] = '\0';
        break;
      }
      cap *= 2;
    }
    if (!valid_utf8(target)) die("cannot pack %s: its target is not valid UTF-8", path->s);
    header(path->s, path->len, 0777, 0, '2', target);
    free(target);
  } else if (whiteout) {
    /* The whiteout's name: .wh. before the last component. */
    struct text name_wh = {0};
    const char *slash = strrchr(path->s, '/');
    size_t base_at = slash ? (size_t)(slash - path->s) + 1 : 0;
    text_add(&name_wh, path->s, base_at);
    text_add(&name_wh, WHITEOUT_PREFIX, strlen(WHITEOUT_PREFIX));
    text_add(&name_wh, path->s + base_at, path->len - base_at);
    header(name_wh.s, name_wh.len, 0, 0, '0', NULL);
    free(name_wh.s);
  }
}

/* The entries of the open directory fd (closed here), sorted; path is its relative path. */
static void pack_dir(int fd, struct text *path) {
  DIR *d = fdopendir(fd);
  if (!d) die_errno("cannot read directory %s", path->len ? path->s : ".");
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  errno = 0;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      char **grown = realloc(names, cap * sizeof *names);
      if (!grown) die("out of memory");
      names = grown;
    }
    if (!(names[n++] = strdup(e->d_name))) die("out of memory");
  }
  if (errno != 0) die_errno("cannot read directory %s", path->len ? path->s : ".");
  for (size_t i = 0; i < n; i++)
    if (!valid_utf8(names[i]))
      die("cannot pack a name in %s: it is not valid UTF-8", path->len ? path->s : ".");
  qsort(names, n, sizeof *names, compare_js);
  size_t len = path->len;
  for (size_t i = 0; i < n; i++) {
    if (len > 0) text_add(path, "/", 1);
    text_add(path, names[i], strlen(names[i]));
    pack_entry(dirfd(d), names[i], path);
    path->len = len;
    path->s[len] = '\0';
    free(names[i]);
  }
  free(names);
  closedir(d);
}

void pack_tree(const char *root) {
  /* Every directory on the way down stays open while its entries are packed. */
  struct rlimit files;
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &files);
  }
  int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) die_errno("cannot open %s", root);
  struct text path = {0};
  text_add(&path, "", 0);
  pack_dir(fd, &path);
  zeros(2 * BLOCK);
  flush_out();
  free(path.s);
}
