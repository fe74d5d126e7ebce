/*
 * castle-treeutil: the two things Node's fs cannot do to a layer tree, done for the cache package.
 *
 *   castle-treeutil opaque <root>   prints, NUL-terminated, the paths (relative to root) of every
 *                                   directory marked opaque for overlayfs (user.overlay.opaque or
 *                                   trusted.overlay.opaque = "y"), in no particular order.
 *   castle-treeutil apply <root>    reads NUL-separated pairs from stdin: "w" <path> makes an
 *                                   overlayfs whiteout (0/0 char device) at path, "o" <path> marks
 *                                   the existing directory at path opaque (user.overlay.opaque=y).
 *   castle-treeutil lock <file>     takes an exclusive flock on file (created if missing), prints
 *                                   "locked\n" once it holds it, and keeps it until its stdin
 *                                   closes or its parent dies: the kernel releases the lock on any
 *                                   death, so a killed Castle never leaves a stale lock behind.
 *   castle-treeutil lock-shared <file>  the same with a shared flock: many holders at once, none
 *                                   while anyone holds the exclusive lock (builds share the store;
 *                                   a prune excludes them).
 *   castle-treeutil pack <root>     writes the tar of the layer tree at root to stdout, the bytes
 *                                   Castle's packer writes (see pack.c).
 *   castle-treeutil serve           a long-lived helper that runs programs, makes fifos and
 *                                   syncs filesystems for one Node process (see serve.c).
 *
 * Paths are relative, must not contain ".." and are resolved beneath root without following
 * symlinks (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so a hostile list cannot write
 * outside the tree. Exit 0 on success, 1 with one line on stderr otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include "treeutil.h"

static size_t root_len;

int is_opaque(int fd, const char *path) {
  static const char *const names[] = {"user.overlay.opaque", "trusted.overlay.opaque"};
  char value[4];
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    ssize_t n = fd >= 0 ? fgetxattr(fd, names[i], value, sizeof value)
                        : lgetxattr(path, names[i], value, sizeof value);
    if (n == 1 && value[0] == 'y') return 1;
  }
  return 0;
}

static int visit(const char *path, const struct stat *st, int type, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  if (type == FTW_DNR) die("cannot read directory %s", path);
  if (type != FTW_D || strlen(path) <= root_len) return 0;
  if (is_opaque(-1, path)) {
    const char *rel = path + root_len + 1;
    fwrite(rel, 1, strlen(rel) + 1, stdout);
  }
  return 0;
}

static void list_opaque(const char *root) {
  root_len = strlen(root);
  while (root_len > 1 && root[root_len - 1] == '/') root_len--;
  if (nftw(root, visit, 64, FTW_PHYS) != 0) die_errno("walking %s", root);
  if (fflush(stdout) != 0) die_errno("writing output");
}

/* Reads one NUL-terminated field from stdin; returns NULL at a clean end of input. */
static char *read_field(void) {
  static char *line;
  static size_t cap;
  ssize_t n = getdelim(&line, &cap, '\0', stdin);
  if (n < 0) return NULL;
  if (n == 0 || line[n - 1] != '\0') die("input ends inside a field");
  return line;
}

static void check_relative(const char *path) {
  if (path[0] == '\0' || path[0] == '/')
    die("refusing path \"%s\": must be relative and non-empty", path);
  for (const char *p = path; *p;) {
    const char *end = strchrnul(p, '/');
    if (end - p == 2 && p[0] == '.' && p[1] == '.') die("refusing path \"%s\": contains ..", path);
    p = *end ? end + 1 : end;
  }
}

/* Opens the parent directory of rel beneath root without following any symlink. */
static int open_parent(int root_fd, const char *rel, const char **base) {
  const char *slash = strrchr(rel, '/');
  if (!slash) {
    *base = rel;
    return dup(root_fd);
  }
  *base = slash + 1;
  char *dir = strndup(rel, (size_t)(slash - rel));
  if (!dir) die("out of memory");
  struct open_how how = {
      .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
      .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
  };
  /* EAGAIN: a mount or rename elsewhere raced with the lookup; the kernel asks for a retry. */
  int fd;
  int attempt = 0;
  do fd = (int)syscall(SYS_openat2, root_fd, dir, &how, sizeof how);
  while (fd < 0 && errno == EAGAIN && ++attempt < 1000);
  if (fd < 0) die_errno("opening %s beneath the tree", dir);
  free(dir);
  return fd;
}

static void make_whiteout(int root_fd, const char *rel) {
  const char *base;
  int dir = open_parent(root_fd, rel, &base);
  if (mknodat(dir, base, S_IFCHR | 0000, makedev(0, 0)) != 0) die_errno("making whiteout %s", rel);
  close(dir);
}

static void mark_opaque(int root_fd, const char *rel) {
  const char *base;
  int dir = open_parent(root_fd, rel, &base);
  int fd = openat(dir, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) die_errno("opening directory %s", rel);
  if (fsetxattr(fd, "user.overlay.opaque", "y", 1, 0) != 0) die_errno("marking %s opaque", rel);
  close(fd);
  close(dir);
}

static void apply(const char *root) {
  int root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) die_errno("opening %s", root);
  for (;;) {
    char *op = read_field();
    if (!op) break;
    char kind = op[0] == '\0' || op[1] != '\0' ? '?' : op[0];
    char *rel = read_field();
    if (!rel) die("operation \"%s\" has no path", op);
    check_relative(rel);
    switch (kind) {
      case 'w':
        make_whiteout(root_fd, rel);
        break;
      case 'o':
        mark_opaque(root_fd, rel);
        break;
      default:
        die("unknown operation \"%s\" (expected w or o)", op);
    }
  }
  close(root_fd);
}

static void hold_lock(const char *file, int how) {
  /* Die with the parent even if its stdin end is inherited elsewhere. */
  pid_t parent = getppid();
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) die_errno("prctl(PR_SET_PDEATHSIG)");
  if (getppid() != parent) return;
  int fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) die_errno("opening lock file %s", file);
  while (flock(fd, how) != 0)
    if (errno != EINTR) die_errno("locking %s", file);
  if (write(STDOUT_FILENO, "locked\n", 7) != 7) die_errno("reporting the lock");
  char buf[64];
  for (;;) {
    ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EINTR)) break;
  }
  close(fd);
}

int main(int argc, char **argv) {
  die_program("castle-treeutil", 1);
  if (argc == 2 && strcmp(argv[1], "serve") == 0) {
    serve();
    return 0;
  }
  if (argc != 3) {
    fputs("usage: castle-treeutil opaque|apply|pack <root> | lock|lock-shared <file> | serve\n",
          stderr);
    return 2;
  }
  if (strcmp(argv[1], "opaque") == 0)
    list_opaque(argv[2]);
  else if (strcmp(argv[1], "pack") == 0)
    pack_tree(argv[2]);
  else if (strcmp(argv[1], "apply") == 0)
    apply(argv[2]);
  else if (strcmp(argv[1], "lock") == 0)
    hold_lock(argv[2], LOCK_EX);
  else if (strcmp(argv[1], "lock-shared") == 0)
    hold_lock(argv[2], LOCK_SH);
  else
    die("unknown command \"%s\" (expected opaque, apply, pack, lock, lock-shared or serve)",
        argv[1]);
  return 0;
}
