/* overlay.c: the two overlay drivers and the fix-up that keeps their upper dirs compatible.
 *
 * Kernel overlayfs (the fast path) is mounted with userxattr, so whiteouts are 0/0 character
 * devices and opaque dirs carry user.overlay.opaque=y. With the new mount API (kernel >= 6.8)
 * each layer is one fsconfig("lowerdir+") call, so 500 lowers need no long option string, and a
 * failure comes with the kernel's own message. Older kernels get mount(2), whose options are
 * limited to one page: every layer then gets a short symlink (base-36 names) in a private dir on
 * the base tmpfs and the mount is made from there with relative names (~1.5 KB for 500 lowers,
 * and ',' ':' '\' in host paths need no escaping).
 *
 * fuse-overlayfs (the fallback) is exec'd inside the mount namespace. Its upper dirs mark an
 * opaque dir with user.fuseoverlayfs.opaque plus ".wh..wh..opq" and ".wh..opq" entries, which
 * kernel overlayfs would show as ordinary files; fuse_normalize_upper rewrites them to the kernel
 * form after the sandbox exits, so any upper can later serve as a lower for either driver. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>

#include "kabi.h"
#include "sandbox.h"

static void base36(size_t i, char *out) {
  char tmp[16];
  size_t n = 0;
  do {
    tmp[n++] = "0123456789abcdefghijklmnopqrstuvwxyz"[i % 36];
    i /= 36;
  } while (i > 0);
  for (size_t k = 0; k < n; k++) out[k] = tmp[n - 1 - k];
  out[n] = '\0';
}

/* A symlink named name in the current dir (the overlay's link dir) pointing at a host path. */
static void link_layer(const char *linkdir, const char *name, const char *path) {
  if (symlink(path, name) < 0) die_errno("symlink %s/%s -> %s", linkdir, name, path);
}

/* Legacy mount(2): every layer gets a short relative name in linkdir. */
static int mount_with_links(const struct overlay *ov, const char *target, const char *linkdir,
                            unsigned long flags) {
  if (mkdir(linkdir, 0700) < 0 && errno != EEXIST) die_errno("mkdir %s", linkdir);
  if (chdir(linkdir) < 0) die_errno("chdir %s", linkdir);
  /* overlayfs lists lowerdirs top first; the spec gives them bottom first. */
  size_t cap = 64 + ov->nlowers * 4;
  autofree char *opts = xmalloc(cap);
  size_t used = (size_t)snprintf(opts, cap, "lowerdir=");
  char name[16];
  for (size_t k = 0; k < ov->nlowers; k++) {
    size_t i = ov->nlowers - 1 - k;
    base36(i, name);
    link_layer(linkdir, name, ov->lowers[i]);
    used += (size_t)snprintf(opts + used, cap - used, "%s%s", k == 0 ? "" : ":", name);
  }
  if (ov->upper != NULL) {
    link_layer(linkdir, "u", ov->upper);
    link_layer(linkdir, "w", ov->work);
    used += (size_t)snprintf(opts + used, cap - used, ",upperdir=u,workdir=w");
  }
  snprintf(opts + used, cap - used, ",userxattr%s", ov->volatile_ ? ",volatile" : "");
  int err = 0;
  if (mount("overlay", target, "overlay", flags, opts) < 0) {
    err = errno;
    /* A fallback to fuse keeps the base around: leave no host paths in it. */
    for (size_t i = 0; i < ov->nlowers; i++) {
      base36(i, name);
      unlink(name);
    }
    unlink("u");
    unlink("w");
  }
  if (chdir("/") < 0) die_errno("chdir /");
  if (err != 0) rmdir(linkdir);
  return err;
}

/* fsconfig strings are capped at 256 bytes; a longer path goes through a symlink. */
static const char *short_path(const char *path, const char *linkdir, const char *name,
                              char *buf, size_t size) {
  if (strlen(path) < 250) return path;
  if (mkdir(linkdir, 0700) < 0 && errno != EEXIST) die_errno("mkdir %s", linkdir);
  snprintf(buf, size, "%s/%s", linkdir, name);
  if (symlink(path, buf) < 0) die_errno("symlink %s -> %s", buf, path);
  return buf;
}

static int set_string(int fd, const char *key, const char *value) {
  return (int)syscall(SYS_fsconfig, fd, CASTLE_FSCONFIG_SET_STRING, key, value, 0);
}

/* The kernel's own explanation of a failed fsconfig, from the context's log. */
static void read_fs_log(int fd, char *msg, size_t size) {
  size_t used = 0;
  char line[256];
  ssize_t n;
  msg[0] = '\0';
  while (used + 2 < size && (n = read(fd, line, sizeof line - 1)) > 0) {
    line[n] = '\0';
    used += (size_t)snprintf(msg + used, size - used, "%s%s", used ? "; " : "",
                             n > 2 && line[1] == ' ' ? line + 2 : line);
  }
}

/* New mount API, one layer per fsconfig call: no page limit, no escaping. Returns -1 when
 * the kernel lacks it ("lowerdir+" is 6.8+), else 0 or the errno of the failure. */
static int mount_with_fsconfig(const struct overlay *ov, const char *target, const char *linkdir,
                               bool readonly, char *msg, size_t size) {
  autoclose int fd = (int)syscall(SYS_fsopen, "overlay", CASTLE_FSOPEN_CLOEXEC);
  if (fd < 0) return errno == ENOSYS ? -1 : errno;
  char buf[96], name[16];
  for (size_t k = 0; k < ov->nlowers; k++) {
    size_t i = ov->nlowers - 1 - k; /* top first */
    base36(i, name);
    if (set_string(fd, "lowerdir+", short_path(ov->lowers[i], linkdir, name, buf, sizeof buf)) <
        0) {
      if (k == 0 && errno == EINVAL) return -1; /* kernel < 6.8 */
      int err = errno;
      read_fs_log(fd, msg, size);
      return err;
    }
  }
  if (ov->upper != NULL &&
      (set_string(fd, "upperdir", short_path(ov->upper, linkdir, "u", buf, sizeof buf)) < 0 ||
       set_string(fd, "workdir", short_path(ov->work, linkdir, "w", buf, sizeof buf)) < 0)) {
    int err = errno;
    read_fs_log(fd, msg, size);
    return err;
  }
  if (syscall(SYS_fsconfig, fd, CASTLE_FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0 ||
      (ov->volatile_ && syscall(SYS_fsconfig, fd, CASTLE_FSCONFIG_SET_FLAG, "volatile", NULL, 0) < 0) ||
      syscall(SYS_fsconfig, fd, CASTLE_FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
    int err = errno;
    read_fs_log(fd, msg, size);
    return err;
  }
  uint64_t attrs = CASTLE_MOUNT_ATTR_NOSUID | CASTLE_MOUNT_ATTR_NODEV |
                   (readonly ? CASTLE_MOUNT_ATTR_RDONLY : 0);
  autoclose int mfd = (int)syscall(SYS_fsmount, fd, CASTLE_FSMOUNT_CLOEXEC, attrs);
  if (mfd < 0) return errno;
  if (syscall(SYS_move_mount, mfd, "", AT_FDCWD, target, CASTLE_MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return errno;
  return 0;
}

/* Returns 0, or the errno of the failed mount so "auto" can fall back to fuse; msg gets the
 * kernel's explanation when it gave one. */
int overlay_mount_kernel(const struct overlay *ov, const char *target, const char *linkdir,
                         char *msg, size_t size) {
  msg[0] = '\0';
  /* CASTLE_SANDBOX_LEGACY_MOUNT=1 forces the mount(2) path (tests cover both). */
  const char *legacy = getenv("CASTLE_SANDBOX_LEGACY_MOUNT");
  if (legacy == NULL || strcmp(legacy, "1") != 0) {
    int err = mount_with_fsconfig(ov, target, linkdir, ov->upper == NULL, msg, size);
    if (err >= 0) return err;
  }
  unsigned long flags = MS_NOSUID | MS_NODEV | (ov->upper == NULL ? MS_RDONLY : 0);
  return mount_with_links(ov, target, linkdir, flags);
}

static const char *fuse_binary(void) {
  static const char *const dirs[] = {"/usr/bin", "/bin", "/usr/local/bin", "/usr/sbin"};
  const char *env = getenv("CASTLE_FUSE_OVERLAYFS");
  if (env != NULL && env[0] == '/') return env;
  for (size_t i = 0; i < N_ELEMENTS(dirs); i++) {
    char *path = xasprintf("%s/fuse-overlayfs", dirs[i]);
    if (access(path, X_OK) == 0) return path;
    free(path);
  }
  return NULL;
}

bool fuse_available(const char **why) {
  if (fuse_binary() == NULL) {
    *why = "fuse-overlayfs is not installed (apt install fuse-overlayfs)";
    return false;
  }
  int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    *why = "/dev/fuse not accessible: fuse-overlayfs needs it (it is usually 0666; here "
           "only root may open it)";
    return false;
  }
  close(fd);
  return true;
}

static void append_path(char **opts, size_t *used, size_t *cap, const char *sep, const char *path) {
  if (strpbrk(path, ",:\\") != NULL)
    die("fuse-overlayfs cannot take the path \"%.200s\" (it contains ',' ':' or '\\')", path);
  size_t need = strlen(sep) + strlen(path) + 1;
  if (*used + need > *cap) *opts = xrealloc(*opts, (*cap = (*used + need) * 2));
  *used += (size_t)snprintf(*opts + *used, *cap - *used, "%s%s", sep, path);
}

void overlay_mount_fuse(const struct overlay *ov, const char *target) {
  const char *why = NULL;
  if (!fuse_available(&why)) die("mount fuse-overlayfs on %s: %s", target, why);
  const char *bin = fuse_binary();

  size_t cap = 256, used = 0;
  autofree char *opts = xmalloc(cap);
  opts[0] = '\0';
  for (size_t k = 0; k < ov->nlowers; k++)
    append_path(&opts, &used, &cap, k == 0 ? "lowerdir=" : ":", ov->lowers[ov->nlowers - 1 - k]);
  if (ov->upper != NULL) {
    append_path(&opts, &used, &cap, ",upperdir=", ov->upper);
    append_path(&opts, &used, &cap, ",workdir=", ov->work);
  }
  append_path(&opts, &used, &cap, ",", "allow_other");

  /* Its chatter goes to a pipe, shown only when it fails. */
  int out[2];
  if (pipe2(out, O_CLOEXEC) < 0) die_errno("pipe");
  pid_t pid = fork();
  if (pid < 0) die_errno("fork fuse-overlayfs");
  if (pid == 0) {
    if (dup2(out[1], STDOUT_FILENO) < 0 || dup2(out[1], STDERR_FILENO) < 0) _exit(126);
    const char *argv[] = {"fuse-overlayfs", "-o", opts, target, NULL};
    char *envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", NULL};
    execve(bin, (char *const *)argv, envp);
    _exit(127);
  }
  close(out[1]);
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) die_errno("wait for fuse-overlayfs");
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    close(out[0]);
    return;
  }
  /* The daemon is gone or never started; read what it said without blocking. */
  char msg[256] = "";
  if (fcntl(out[0], F_SETFL, O_NONBLOCK) == 0) {
    ssize_t n = read(out[0], msg, sizeof msg - 1);
    msg[n > 0 ? n : 0] = '\0';
    for (char *p = msg; *p; p++)
      if (*p == '\n') *p = ' ';
  }
  close(out[0]);
  die("mount fuse-overlayfs on %s failed (status %d): %s", target, status,
      msg[0] != '\0' ? msg : "no output");
}

/* A volatile mount leaves <work>/work/incompat/volatile behind, and overlayfs refuses the next
 * mount while it exists (the upper may be incomplete after a crash; "dirty" is inside). After a clean exit the
 * upper is complete, so the monitor removes the marker. */
void overlay_clear_volatile(const char *work) {
  static const char *const dirs[] = {"work", "work/incompat", "work/incompat/volatile"};
  char path[4200];
  /* overlayfs makes these mode 0; the caller owns them, so it may open them up. */
  for (size_t i = 0; i < N_ELEMENTS(dirs); i++) {
    snprintf(path, sizeof path, "%s/%s", work, dirs[i]);
    if (chmod(path, 0700) < 0) return; /* not there: nothing to clear */
  }
  snprintf(path, sizeof path, "%s/work/incompat/volatile/dirty", work);
  if (unlink(path) < 0 && errno != ENOENT) warn("remove %s: %s", path, strerror(errno));
  for (size_t i = N_ELEMENTS(dirs) - 1; i > 0; i--) {
    snprintf(path, sizeof path, "%s/%s", work, dirs[i]);
    if (rmdir(path) < 0) warn("remove %s: %s", path, strerror(errno));
  }
}

/* ---- upper dir fix-up (runs in the monitor, as the caller, after the sandbox is gone) ---- */

static void normalize_dir(int dirfd, const char *path, int depth) {
  if (depth > 256) return;
  DIR *dir = fdopendir(dirfd);
  if (dir == NULL) {
    close(dirfd);
    return;
  }
  bool opaque = false;
  struct dirent *e;
  while ((e = readdir(dir)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (strcmp(e->d_name, ".wh..wh..opq") == 0) {
      opaque = true;
      if (unlinkat(dirfd, e->d_name, 0) < 0) warn("fix up %s/.wh..wh..opq: %s", path, strerror(errno));
      continue;
    }
    if (strcmp(e->d_name, ".wh..opq") == 0) {
      if (unlinkat(dirfd, e->d_name, 0) < 0) warn("fix up %s/.wh..opq: %s", path, strerror(errno));
      continue;
    }
    if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN) continue;
    int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) continue; /* not a directory after all, or unreadable */
    autofree char *subpath = xasprintf("%s/%s", path, e->d_name);
    normalize_dir(sub, subpath, depth + 1);
  }
  if (opaque && fsetxattr(dirfd, "user.overlay.opaque", "y", 1, 0) < 0)
    warn("mark %s opaque (user.overlay.opaque): %s", path, strerror(errno));
  closedir(dir);
}

void fuse_normalize_upper(const char *upper) {
  int fd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    warn("fix up the fuse-overlayfs upper %s: %s", upper, strerror(errno));
    return;
  }
  normalize_dir(fd, upper, 0);
}
