/* mount.c: builds the sandbox's filesystem the way bubblewrap does: a private tmpfs base, a
 * pivot_root into it (the host root now at /oldroot), the new root assembled at /newroot, a
 * second pivot_root into it and the old root detached, so nothing of the host stays reachable.
 *
 * Host paths are realpath()ed and mounted *before* the first pivot, onto the root (/newroot) or
 * onto staging points (/stage/<i>) in the base, so they mean what the caller meant (an absolute
 * symlink in a host path resolves on the host) and so fuse-overlayfs, a host binary, can run.
 * The base therefore covers a host dir that no host path goes through (see pick_base). Paths
 * inside the sandbox are resolved only after the pivot, with openat2(RESOLVE_IN_ROOT) against
 * /newroot, so an absolute symlink in a layer stays inside the new root; mounts target them
 * through /newroot/proc/self/fd/<fd>. Every mount is nosuid, and nodev except /dev. */
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>

#include "kabi.h"
#include "sandbox.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#define RESOLVE_IN_ROOT_ 0x10ULL
struct open_how_ {
  uint64_t flags, mode, resolve;
};

/* Host dirs the base tmpfs may cover until the first pivot. */
static const char *const base_candidates[] = {"/tmp", "/run", "/mnt", "/var/tmp", "/media",
                                              "/srv", "/opt", "/home", "/boot"};

static NORETURN void die_resolve(const char *path, const char *what) {
  die_hint(errno, errno == EACCES ? "every parent directory must be searchable by the caller"
                                  : NULL,
           "%s %s", what, path);
}

/* realpath() with a one-entry cache of the parent directory: layers usually share a parent
 * (a store), so resolving 500 of them costs one readlink each instead of one per component. */
static char *resolve_host(const char *path, const char *what) {
  static char *cached_dir, *cached_real;
  const char *slash = strrchr(path, '/');
  const char *name = slash + 1;
  size_t dirlen = (size_t)(slash - path);
  bool plain = *name != '\0' && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
  if (plain && dirlen > 0) {
    if (cached_dir == NULL || strlen(cached_dir) != dirlen || strncmp(cached_dir, path, dirlen)) {
      free(cached_dir);
      free(cached_real);
      cached_dir = strndup(path, dirlen);
      cached_real = cached_dir != NULL ? realpath(cached_dir, NULL) : NULL;
      if (cached_real == NULL) {
        free(cached_dir);
        cached_dir = NULL;
      }
    }
    if (cached_real != NULL) {
      char *joined = xasprintf("%s/%s", strcmp(cached_real, "/") == 0 ? "" : cached_real, name);
      char buf[8];
      if (readlink(joined, buf, sizeof buf) < 0 && errno == EINVAL) return joined; /* exists */
      if (errno == ENOENT || errno == EACCES || errno == ENOTDIR) die_resolve(path, what);
      free(joined); /* a symlink: let realpath follow it */
    }
  }
  char *real = realpath(path, NULL);
  if (real == NULL)
    die_hint(errno, errno == EACCES ? "every parent directory must be searchable by the caller"
                                    : NULL,
             "%s %s", what, path);
  return real;
}

static void resolve_overlay(struct overlay *ov, const char *what) {
  const char **lowers = xcalloc(ov->nlowers + 1, sizeof *lowers);
  for (size_t i = 0; i < ov->nlowers; i++) lowers[i] = resolve_host(ov->lowers[i], what);
  ov->lowers = lowers;
  if (ov->upper != NULL) {
    ov->upper = resolve_host(ov->upper, "upper dir");
    ov->work = resolve_host(ov->work, "work dir");
  }
}

void mounts_resolve_host_paths(struct spec *spec) {
  resolve_overlay(&spec->root, "root lower");
  for (size_t i = 0; i < spec->nmounts; i++) {
    struct mount_op *m = &spec->mounts[i];
    if (m->kind == MOUNT_OVERLAY) resolve_overlay(&m->overlay, "overlay lower");
    if (m->kind != MOUNT_BIND) continue;
    m->source = resolve_host(m->source, "bind source");
    struct stat st;
    if (stat(m->source, &st) < 0) die_errno("bind source %s", m->source);
    m->source_is_dir = S_ISDIR(st.st_mode);
  }
}

static bool is_within(const char *dir, const char *path) {
  size_t n = strlen(dir);
  return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* 0: the base at dir hides no host path; 1: a recursive bind would copy it; 2: it hides one. */
static int base_conflict(const struct spec *spec, const char *dir) {
  int worst = 0;
  const struct overlay *ovs[MAX_MOUNTS + 1];
  size_t nov = 0;
  ovs[nov++] = &spec->root;
  for (size_t i = 0; i < spec->nmounts; i++) {
    const struct mount_op *m = &spec->mounts[i];
    if (m->kind == MOUNT_OVERLAY) ovs[nov++] = &m->overlay;
    if (m->kind == MOUNT_BIND && is_within(dir, m->source)) return 2;
    if (m->kind == MOUNT_BIND && is_within(m->source, dir)) worst = 1;
  }
  for (size_t k = 0; k < nov; k++) {
    for (size_t i = 0; i < ovs[k]->nlowers; i++)
      if (is_within(dir, ovs[k]->lowers[i])) return 2;
    if (ovs[k]->upper != NULL && (is_within(dir, ovs[k]->upper) || is_within(dir, ovs[k]->work)))
      return 2;
  }
  return worst;
}

static const char *pick_base(const struct spec *spec) {
  const char *fallback = NULL;
  for (size_t i = 0; i < N_ELEMENTS(base_candidates); i++) {
    struct stat st;
    if (lstat(base_candidates[i], &st) < 0 || !S_ISDIR(st.st_mode)) continue;
    int conflict = base_conflict(spec, base_candidates[i]);
    if (conflict == 0) return base_candidates[i];
    if (conflict == 1 && fallback == NULL) fallback = base_candidates[i];
  }
  if (fallback != NULL) return fallback;
  die("no host directory to hold the sandbox's base tmpfs: every one of /tmp, /run, /mnt, "
      "/var/tmp, ... contains a layer or bind source");
}

static void xmkdir(const char *path, mode_t mode) {
  if (mkdir(path, mode) < 0 && errno != EEXIST) die_errno("mkdir %s", path);
}

/* Mount attributes on a whole tree; remount fallback for kernels < 5.12 (top mount only). */
static void set_attrs(const char *path, bool readonly) {
  struct castle_mount_attr attr = {
      .attr_set = CASTLE_MOUNT_ATTR_NOSUID | CASTLE_MOUNT_ATTR_NODEV |
                  (readonly ? CASTLE_MOUNT_ATTR_RDONLY : 0)};
  if (syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE, &attr, sizeof attr) == 0) return;
  if (errno != ENOSYS) die_errno("set %s nosuid,nodev%s", path, readonly ? ",ro" : "");
  struct statvfs sv;
  if (statvfs(path, &sv) < 0) die_errno("statvfs %s", path);
  /* Flags the kernel locked on the source must be kept, or the remount is refused. */
  unsigned long keep = (sv.f_flag & ST_NOEXEC ? MS_NOEXEC : 0) |
                       (sv.f_flag & ST_NOATIME ? MS_NOATIME : 0) |
                       (sv.f_flag & ST_NODIRATIME ? MS_NODIRATIME : 0) |
                       (sv.f_flag & ST_RELATIME ? MS_RELATIME : 0);
  if (mount(NULL, path, NULL,
            MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | (readonly ? MS_RDONLY : 0) | keep,
            NULL) < 0)
    die_errno("remount %s nosuid,nodev%s", path, readonly ? ",ro" : "");
}

static void bind_host(const char *source, const char *target, bool readonly) {
  if (mount(source, target, NULL, MS_BIND | MS_REC, NULL) < 0) die_mount(NULL, source, target);
  set_attrs(target, readonly);
}

/* What is wrong with the layers themselves, or NULL when they look usable. */
static const char *layer_problem(const struct overlay *ov, char *buf, size_t size) {
  struct stat st, up;
  for (size_t i = 0; i < ov->nlowers; i++)
    if (stat(ov->lowers[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
      snprintf(buf, size, "lower %zu (%s) is not a directory", i, ov->lowers[i]);
      return buf;
    }
  if (ov->upper == NULL) return NULL;
  if (stat(ov->upper, &up) < 0 || !S_ISDIR(up.st_mode)) {
    snprintf(buf, size, "upper %s is not a directory", ov->upper);
    return buf;
  }
  if (stat(ov->work, &st) < 0 || !S_ISDIR(st.st_mode)) {
    snprintf(buf, size, "work %s is not a directory", ov->work);
    return buf;
  }
  if (st.st_dev != up.st_dev) {
    snprintf(buf, size, "upper %s and work %s are on different filesystems", ov->upper, ov->work);
    return buf;
  }
  char marker[4200];
  snprintf(marker, sizeof marker, "%s/work/incompat/volatile", ov->work);
  if (lstat(marker, &st) == 0) {
    snprintf(buf, size, "an earlier volatile run on upper %s did not end cleanly (its writes may "
             "be incomplete); remove %s/work/incompat to use it anyway", ov->upper, ov->work);
    return buf;
  }
  return NULL;
}

static void mount_fuse(struct mount_plan *plan, const struct overlay *ov, const char *target) {
  plan->used = DRIVER_FUSE;
  overlay_mount_fuse(ov, target);
  set_attrs(target, ov->upper == NULL); /* fuse-overlayfs does not mount nosuid */
  plan->spawned_helpers = true;
}

static void mount_overlay(const struct spec *spec, struct mount_plan *plan,
                          const struct overlay *ov, const char *target, size_t index,
                          const char *shown) {
  if (plan->used == DRIVER_FUSE) {
    mount_fuse(plan, ov, target);
    return;
  }
  char linkdir[64], msg[256], problem[512];
  snprintf(linkdir, sizeof linkdir, "%s/links/%zu", plan->base, index);
  int err = overlay_mount_kernel(ov, target, linkdir, msg, sizeof msg);
  if (err == 0) {
    plan->used = DRIVER_KERNEL;
    return;
  }
  if (layer_problem(ov, problem, sizeof problem) != NULL)
    die("overlay on %s: %s", shown, problem);
  /* auto: the first overlay decides; fall back to fuse when the kernel refuses overlayfs
   * itself (no userxattr, no overlay in user namespaces, no xattrs on the upper's fs). */
  bool refused = err == EPERM || err == EINVAL || err == ENODEV || err == EOPNOTSUPP;
  const char *why = NULL;
  if (spec->driver == DRIVER_AUTO && plan->used == DRIVER_AUTO && refused) {
    if (fuse_available(&why)) {
      mount_fuse(plan, ov, target);
      return;
    }
    warn("kernel overlayfs failed (%s) and fuse-overlayfs is unusable: %s", strerror(err), why);
  }
  if (msg[0] != '\0')
    die_hint(err, NULL, "mount overlay on %s: overlayfs says: %s", shown,
             msg);
  errno = err;
  die_mount("overlay", ov->lowers[0], shown);
}

static bool exists_in_lowers(const struct overlay *ov, const char *target) {
  for (size_t i = 0; i < ov->nlowers; i++) {
    char path[8192];
    struct stat st;
    snprintf(path, sizeof path, "%s%s", ov->lowers[i], target);
    if (lstat(path, &st) == 0) return true;
  }
  return false;
}

/* Whether a read-only root already has every mount point (a cheap check in the lowers). */
static bool mount_targets_exist(const struct spec *spec) {
  static const char *const defaults[] = {"/proc", "/dev", "/tmp"};
  for (size_t i = 0; i < N_ELEMENTS(defaults); i++)
    if (!exists_in_lowers(&spec->root, defaults[i])) return false;
  for (size_t i = 0; i < spec->nmounts; i++)
    if (!exists_in_lowers(&spec->root, spec->mounts[i].target)) return false;
  return true;
}

void mounts_stage_host_sources(struct spec *spec, struct host_views *views,
                               struct mount_plan *plan) {
  *plan = (struct mount_plan){.used = spec->driver, .root_writable = spec->root.upper != NULL};
  /* Our copy of the host's mounts must never send mount events back to the host. */
  if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) die_errno("make / a slave mount");

  plan->base = pick_base(spec);
  if (mount("castle", plan->base, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
    die_mount("tmpfs", NULL, plan->base);
  const char *dirs[] = {"newroot", "oldroot", "stage", "links"};
  for (size_t i = 0; i < N_ELEMENTS(dirs); i++) {
    char path[64];
    snprintf(path, sizeof path, "%s/%s", plan->base, dirs[i]);
    xmkdir(path, 0755);
  }
  /* A root caller's sandbox reaches host dirs only through their idmapped views (shift.c). */
  if (views->n > 0) host_views_attach(spec, views, plan->base);

  /* The root: a read-only bind for one lower and no upper, else an overlay. A read-only root
   * that lacks a mount target gets a scaffold: an upper on the base tmpfs that only receives
   * the missing mount points, and the root is made read-only once they exist. */
  char target[96];
  snprintf(target, sizeof target, "%s/newroot", plan->base);
  struct overlay root = spec->root;
  if (root.upper == NULL && !mount_targets_exist(spec)) {
    char *upper = xasprintf("%s/scaffold/u", plan->base), *work = xasprintf("%s/scaffold/w", plan->base);
    snprintf(target, sizeof target, "%s/scaffold", plan->base);
    xmkdir(target, 0755);
    xmkdir(upper, 0755);
    xmkdir(work, 0755);
    root.upper = upper;
    root.work = work;
    plan->root_writable = true;
    plan->root_readonly_later = true;
    snprintf(target, sizeof target, "%s/newroot", plan->base);
  }
  if (root.nlowers == 1 && root.upper == NULL) {
    bind_host(root.lowers[0], target, true);
  } else {
    mount_overlay(spec, plan, &root, target, 0, "/");
  }

  /* Host-sourced mounts, staged under their index until the new root is assembled. */
  for (size_t i = 0; i < spec->nmounts; i++) {
    struct mount_op *m = &spec->mounts[i];
    if (m->kind == MOUNT_TMPFS) continue;
    snprintf(target, sizeof target, "%s/stage/%zu", plan->base, i);
    if (m->kind == MOUNT_BIND && !m->source_is_dir) {
      int fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd < 0) die_errno("create %s", target);
      close(fd);
    } else {
      xmkdir(target, 0755);
    }
    if (m->kind == MOUNT_BIND) bind_host(m->source, target, m->readonly);
    else mount_overlay(spec, plan, &m->overlay, target, i + 1, m->target);
  }
  if (plan->used == DRIVER_AUTO) plan->used = DRIVER_KERNEL; /* no overlay at all */

  /* fuse-overlayfs reaches its layers through /proc/self/fd/N; once the pivot moves its root
   * to the base it needs a /proc there (this pid namespace's, which shows the daemon). */
  if (plan->spawned_helpers) {
    snprintf(target, sizeof target, "%s/proc", plan->base);
    xmkdir(target, 0555);
    if (mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
      die_mount("proc", NULL, target);
  }
  /* The overlays and binds hold what they need. The views go with the base when it is detached
   * after the pivot; fuse-overlayfs keeps the base as its daemon's root, so detach them now
   * (each detach waits for an RCU grace period: ~ms, paid only there). */
  if (plan->spawned_helpers) host_views_detach(views);
}

void mounts_pivot_to_base(const struct mount_plan *plan) {
  if (chdir(plan->base) < 0) die_errno("chdir %s", plan->base);
  if (syscall(SYS_pivot_root, ".", "oldroot") < 0) die_errno("pivot_root into the base tmpfs");
  if (chdir("/") < 0) die_errno("chdir /");
}

/* ---- after the first pivot: resolve sandbox paths inside /newroot ---- */

static int open_in_root(int rootfd, const char *path) {
  struct open_how_ how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT_};
  while (*path == '/') path++;
  if (*path == '\0') return (int)fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
  /* openat2 with RESOLVE_IN_ROOT fails with EAGAIN when any mount or rename anywhere on the
   * system raced with the lookup (a global seqcount): busy machines mount constantly, so retry. */
  for (int attempt = 0;; attempt++) {
    int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
    if (fd >= 0 || errno != EAGAIN || attempt == 1000) return fd;
  }
}

/* Opens target inside the new root, creating missing parents (dirs) and the leaf (a dir, or an
 * empty file when is_dir is false). Symlinks resolve inside the new root. */
static int open_target(int rootfd, const char *target, bool is_dir) {
  int fd = open_in_root(rootfd, target);
  if (fd >= 0) return fd;
  if (errno != ENOENT) die_errno("open mount target %s", target);

  char prefix[4096];
  size_t len = strlen(target);
  if (len >= sizeof prefix) die("mount target %s is too long", target);
  int parent = (int)fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
  if (parent < 0) die_errno("dup");
  for (size_t i = 1; i <= len; i++) {
    if (target[i] != '/' && target[i] != '\0') continue;
    memcpy(prefix, target, i);
    prefix[i] = '\0';
    const char *name = strrchr(prefix, '/') + 1;
    if (*name == '\0') continue; /* "//" */
    fd = open_in_root(rootfd, prefix);
    if (fd < 0 && errno == ENOENT) {
      bool leaf_file = target[i] == '\0' && !is_dir;
      int r = leaf_file ? openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)
                        : mkdirat(parent, name, 0755);
      if (r < 0 && errno == EROFS)
        die_hint(errno, "the root has no upper dir, so it is read-only: create it in a lower",
                 "create mount target %s", prefix);
      if (r < 0) die_errno("create mount target %s", prefix);
      if (leaf_file) close(r);
      fd = open_in_root(rootfd, prefix);
    }
    if (fd < 0) die_errno("open mount target %s", prefix);
    close(parent);
    parent = fd;
  }
  return parent;
}

/* The path mount(2) can use for an fd: the magic link in the sandbox's own /proc. */
static const char *fd_path(char *buf, size_t size, int fd) {
  snprintf(buf, size, "/newroot/proc/self/fd/%d", fd);
  return buf;
}

static void mount_at(int rootfd, const char *target, bool is_dir, const char *source,
                     const char *fstype, unsigned long flags, const char *data) {
  autoclose int fd = open_target(rootfd, target, is_dir);
  char path[64];
  if (mount(source, fd_path(path, sizeof path, fd), fstype, flags, data) < 0) {
    if (flags & MS_MOVE) die_mount(NULL, source, target);
    die_mount(fstype, NULL, target);
  }
}

static void setup_dev(int rootfd) {
  mount_at(rootfd, "/dev", true, "tmpfs", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755");
  /* /newroot/dev is now our fresh tmpfs: plain paths below it are safe. */
  static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
  for (size_t i = 0; i < N_ELEMENTS(nodes); i++) {
    char host[64], inside[64];
    snprintf(host, sizeof host, "/oldroot/dev/%s", nodes[i]);
    snprintf(inside, sizeof inside, "/newroot/dev/%s", nodes[i]);
    struct stat st;
    if (stat(host, &st) < 0 || !S_ISCHR(st.st_mode)) continue; /* e.g. no /dev/tty */
    int fd = open(inside, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) die_errno("create %s", inside);
    close(fd);
    if (mount(host, inside, NULL, MS_BIND, NULL) < 0) die_mount(NULL, host, inside);
    /* Read-only: the device still reads and writes, but its host inode cannot be chmod'ed,
     * chown'ed or touched from inside (root inside is host root when the caller is root). */
    struct castle_mount_attr attr = {
        .attr_set = CASTLE_MOUNT_ATTR_RDONLY | CASTLE_MOUNT_ATTR_NOSUID | CASTLE_MOUNT_ATTR_NOEXEC};
    if (syscall(SYS_mount_setattr, AT_FDCWD, inside, 0, &attr, sizeof attr) < 0 &&
        mount(NULL, inside, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, NULL) < 0)
      die_errno("make %s read-only", inside);
  }
  xmkdir("/newroot/dev/pts", 0755);
  if (mount("devpts", "/newroot/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
            "newinstance,ptmxmode=0666,mode=620") < 0)
    die_mount("devpts", NULL, "/dev/pts");
  xmkdir("/newroot/dev/shm", 01777);
  if (mount("tmpfs", "/newroot/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
    die_mount("tmpfs", NULL, "/dev/shm");
  static const char *const links[][2] = {
      {"pts/ptmx", "ptmx"}, {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
      {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
  };
  for (size_t i = 0; i < N_ELEMENTS(links); i++) {
    char inside[64];
    snprintf(inside, sizeof inside, "/newroot/dev/%s", links[i][1]);
    if (symlink(links[i][0], inside) < 0) die_errno("symlink %s", inside);
  }
}

/* fuse-overlayfs ran in this pid namespace and took pids 2 and 3; point the pid allocator back
 * so the command still gets pid 2 (free again: that process exited and was reaped). Done here,
 * before /proc/sys may turn read-only, and nothing forks between here and the command. */
static void reset_last_pid(void) {
  int fd = open("/newroot/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, "1", 1) != 1) warn("reset ns_last_pid: %s", strerror(errno));
  if (fd >= 0) close(fd);
}

/* Only when root inside is host root (the caller is real root): /proc/sys and a few other /proc
 * files check nothing but "euid == 0" (or gid 0) before a write, so root inside would reach the
 * host's sysctls, irq affinities and sysrq. Read-only binds cover the writable parts and empty
 * read-only mounts the ones that show host state (as docker's masked and read-only paths). Not
 * for other callers: the kernel then refuses a fresh /proc in a nested user namespace (covered
 * parts make /proc "not fully visible"), and an unprivileged sandbox may run Castle inside. */
static const char *const proc_readonly[] = {"sys", "sysrq-trigger", "irq", "bus", "fs"};
static const char *const proc_masked[] = {"kcore", "keys", "kmsg", "latency_stats", "timer_list",
                                          "timer_stats", "sched_debug", "acpi", "asound", "scsi"};

static void readonly_in_place(const char *path, uint64_t extra) {
  struct castle_mount_attr attr = {.attr_set = CASTLE_MOUNT_ATTR_RDONLY | CASTLE_MOUNT_ATTR_NOSUID |
                                               CASTLE_MOUNT_ATTR_NOEXEC | extra};
  if (syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE, &attr, sizeof attr) == 0) return;
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC |
                        (extra & CASTLE_MOUNT_ATTR_NODEV ? MS_NODEV : 0);
  if (mount(NULL, path, NULL, flags, NULL) < 0) die_errno("make %s read-only", path);
}

static void mask_proc(void) {
  char path[64];
  struct stat st;
  for (size_t i = 0; i < N_ELEMENTS(proc_readonly); i++) {
    snprintf(path, sizeof path, "/newroot/proc/%s", proc_readonly[i]);
    if (lstat(path, &st) < 0) continue; /* not in this kernel's /proc */
    if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0) die_mount(NULL, path, path);
    readonly_in_place(path, CASTLE_MOUNT_ATTR_NODEV);
  }
  for (size_t i = 0; i < N_ELEMENTS(proc_masked); i++) {
    snprintf(path, sizeof path, "/newroot/proc/%s", proc_masked[i]);
    if (lstat(path, &st) < 0) continue;
    if (S_ISDIR(st.st_mode)) {
      if (mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                "mode=0555,size=4k") < 0)
        die_mount("tmpfs", NULL, path);
    } else {
      /* The host's /dev/null: reads as empty, as docker's masks do. */
      if (mount("/oldroot/dev/null", path, NULL, MS_BIND, NULL) < 0)
        die_mount(NULL, "/dev/null", path);
      readonly_in_place(path, 0);
    }
  }
}

void mounts_assemble_root(const struct spec *spec, const struct mount_plan *plan) {
  autoclose int rootfd = open("/newroot", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) die_errno("open /newroot");

  /* /proc first: the later mounts reach their targets through /newroot/proc/self/fd. */
  struct stat st;
  if (fstatat(rootfd, "proc", &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno != ENOENT) die_errno("stat /proc in the new root");
    if (!plan->root_writable)
      die_hint(0, "add an empty /proc directory to a lower layer",
               "the root is read-only (no upper) and has no /proc directory");
    if (mkdirat(rootfd, "proc", 0555) < 0) die_errno("mkdir /proc in the new root");
  } else if (!S_ISDIR(st.st_mode)) {
    die("/proc in the new root is not a directory");
  }
  if (mount("proc", "/newroot/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
    die_mount("proc", NULL, "/proc");
  if (plan->spawned_helpers) reset_last_pid();
  if (plan->mask_proc) mask_proc();

  setup_dev(rootfd);
  char tmp_data[64] = "mode=1777";
  if (spec->tmp_size > 0)
    snprintf(tmp_data, sizeof tmp_data, "mode=1777,size=%llu", (unsigned long long)spec->tmp_size);
  mount_at(rootfd, "/tmp", true, "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, tmp_data);

  /* The spec's mounts, in order: host-sourced ones move from their staging point. */
  for (size_t i = 0; i < spec->nmounts; i++) {
    const struct mount_op *m = &spec->mounts[i];
    char staged[64], data[64];
    snprintf(staged, sizeof staged, "/stage/%zu", i);
    switch (m->kind) {
      case MOUNT_BIND:
        mount_at(rootfd, m->target, m->source_is_dir, staged, NULL, MS_MOVE, NULL);
        break;
      case MOUNT_OVERLAY:
        mount_at(rootfd, m->target, true, staged, NULL, MS_MOVE, NULL);
        break;
      case MOUNT_TMPFS:
        if (m->size > 0)
          snprintf(data, sizeof data, "mode=%04o,size=%llu", m->mode, (unsigned long long)m->size);
        else
          snprintf(data, sizeof data, "mode=%04o", m->mode);
        mount_at(rootfd, m->target, true, "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, data);
        break;
      default:
        die("mount %zu has an unknown kind (internal error)", i);
    }
  }
  if (plan->root_readonly_later) {
    struct castle_mount_attr attr = {.attr_set = CASTLE_MOUNT_ATTR_RDONLY};
    if (syscall(SYS_mount_setattr, AT_FDCWD, "/newroot", 0, &attr, sizeof attr) < 0 &&
        mount(NULL, "/newroot", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
              NULL) < 0)
      die_errno("make the root read-only");
  }
}

void mounts_enter_root(const struct mount_plan *plan) {
  /* Detach the host: private first, so the unmount is not propagated anywhere. */
  if (mount("oldroot", "oldroot", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    die_errno("make the old root private");
  if (umount2("oldroot", MNT_DETACH) < 0) die_errno("detach the old root");
  if (chdir("/newroot") < 0) die_errno("chdir /newroot");
  if (!plan->spawned_helpers) {
    /* pivot_root(".", ".") stacks the base on top of the new root; detaching "." drops it. */
    if (syscall(SYS_pivot_root, ".", ".") < 0) die_errno("pivot_root into the new root");
    if (umount2(".", MNT_DETACH) < 0) die_errno("detach the base tmpfs");
  } else {
    /* fuse-overlayfs: pivot_root would also move the daemon's root onto its own mount, and
     * its lookups through /proc/self/fd would then wait on itself. Move the new root over the
     * base and chroot instead (like switch_root): the daemon keeps the base as its root, which
     * by now holds only empty dirs and this namespace's /proc. */
    if (mount(".", "/", NULL, MS_MOVE, NULL) < 0) die_errno("move the new root over the base");
    if (chroot(".") < 0) die_errno("chroot into the new root");
  }
  if (chdir("/") < 0) die_errno("chdir /");
}
