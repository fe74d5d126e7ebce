/* shift.c: when real root starts a sandbox, root inside is not host root. Its uid and gid map
 * is "0 SHIFT_ID 1" (written by the monitor, userns.c), so the kernel's checks on host-owned
 * files fail inside as they do for a rootless caller: a nested user+mount+cgroup namespace can
 * mount the cgroup hierarchies but not raise a limit, /proc/sys stays read-only without masks,
 * and a file another host user owns stays unmapped. A single id, like a rootless caller
 * without /etc/subuid, so a build behaves the same under root as under any user.
 *
 * The store's files stay owned by host root, exactly as before (so a root store and a rootless
 * one hold the same files and digests, which leave owners out): the sandbox sees every host dir
 * it mounts from through an idmapped mount (mount_setattr MOUNT_ATTR_IDMAP with the same map),
 * where host uid 0 shows as SHIFT_ID — root's own files inside — and what root inside creates
 * lands on disk as uid 0. One view per distinct parent dir of the spec's host paths (layers,
 * uppers, works, bind sources), opened here by the caller while it is still host root (only
 * host root may idmap a host filesystem), read-only unless an upper, a work dir or a writable
 * bind lives in it; init attaches them on its base tmpfs, points the spec's paths into them,
 * and they go with the base once the mounts made from them stand.
 *
 * Needs kernel >= 5.19 (overlayfs on idmapped layers) and filesystems that support idmapped
 * mounts (ext4, xfs, btrfs, tmpfs >= 6.3...); otherwise, and for root of a user namespace
 * that cannot map SHIFT_ID (a rootless container: its root is no host root), root inside stays
 * the caller's root, with a warning when the caller is host root. */
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "kabi.h"
#include "sandbox.h"

/* Whether our own namespace's map (/proc/self/uid_map) holds id, i.e. we may map it onward. */
static bool id_mapped(const char *path, unsigned long id) {
  FILE *f = fopen(path, "re");
  if (f == NULL) die_errno("open %s", path);
  unsigned long inside, outside, count;
  bool found = false;
  while (!found && fscanf(f, "%lu %lu %lu", &inside, &outside, &count) == 3)
    found = id >= inside && id - inside < count;
  fclose(f);
  return found;
}

/* Whether the map at path sends every id to itself: the initial user namespace's
 * "0 0 4294967295", which no other namespace can have unless host root made it. */
static bool identity_map(const char *path) {
  FILE *f = fopen(path, "re");
  if (f == NULL) die_errno("open %s", path);
  unsigned long inside, outside, count;
  int lines = 0;
  bool identity = true;
  while (fscanf(f, "%lu %lu %lu", &inside, &outside, &count) == 3) {
    lines++;
    identity = identity && inside == 0 && outside == 0 && count == 4294967295UL;
  }
  fclose(f);
  return lines == 1 && identity;
}

bool root_is_host_root(void) {
  if (identity_map("/proc/self/uid_map") || identity_map("/proc/self/gid_map")) return true;
  /* A namespace host root made with "0 0 1": the sysctl files check for host uid 0 alone. */
  return faccessat(AT_FDCWD, "/proc/sys/vm/overcommit_memory", W_OK, AT_EACCESS) == 0;
}

/* Dies when SHIFT_ID is a user's or group's id on this machine, or inside a subordinate range:
 * that user could then signal or trace every root caller's sandbox. */
static void check_id_unused(const char *path, size_t field, bool range) {
  FILE *f = fopen(path, "re");
  if (f == NULL && errno == ENOENT) return;
  if (f == NULL) die_errno("open %s", path);
  char line[1024];
  while (fgets(line, sizeof line, f) != NULL) {
    char *fields[4] = {NULL}, *save = NULL;
    size_t n = 0;
    for (char *tok = strtok_r(line, ":\n", &save); tok != NULL && n < 4;
         tok = strtok_r(NULL, ":\n", &save))
      fields[n++] = tok;
    uint64_t start, count = 1;
    if (n <= field || !parse_u64(fields[field], UINT32_MAX, &start)) continue;
    if (range && (n < 3 || !parse_u64(fields[2], UINT32_MAX, &count))) continue;
    if (SHIFT_ID >= start && SHIFT_ID - start < count) {
      fclose(f);
      die_hint(0, "remove that entry, or run Castle as an unprivileged user",
               "id %u, which runs a root caller's sandboxes, belongs to \"%s\" in %s", SHIFT_ID,
               fields[0], path);
    }
  }
  fclose(f);
}

bool shift_possible(char *why, size_t size) {
  why[0] = '\0';
  if (!id_mapped("/proc/self/uid_map", SHIFT_ID) || !id_mapped("/proc/self/gid_map", SHIFT_ID))
    return false; /* root of a user namespace that is no host root: nothing to shift */
  struct utsname u;
  if (uname(&u) < 0) die_errno("uname");
  unsigned long major = strtoul(u.release, NULL, 10);
  const char *dot = strchr(u.release, '.');
  unsigned long minor = dot != NULL ? strtoul(dot + 1, NULL, 10) : 0;
  if (major < 5 || (major == 5 && minor < 19)) {
    snprintf(why, size, "kernel %s has no overlayfs on idmapped mounts (5.19+)", u.release);
    return false;
  }
  check_id_unused("/etc/passwd", 2, false);
  check_id_unused("/etc/group", 2, false);
  check_id_unused("/etc/subuid", 1, true);
  check_id_unused("/etc/subgid", 1, true);
  return true;
}

/* A user namespace whose map is the sandbox's ("0 SHIFT_ID 1"), for the views' idmap: the
 * mounts keep a copy of the map, and the fd keeps the namespace, so its holder (a child that only
 * waits for EOF on a pipe) may exit at once; it is reaped later (host_views_reap), so that
 * nobody waits here for the scheduler to run it. */
static int shifted_userns(pid_t *holder) {
  int hold[2];
  if (pipe2(hold, O_CLOEXEC) < 0) die_errno("pipe");
  pid_t pid =
      (pid_t)syscall(SYS_clone, (unsigned long)CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL);
  if (pid < 0) die_errno("clone a user namespace for the idmapped views");
  if (pid == 0) {
    char c;
    close(hold[1]);
    (void)!read(hold[0], &c, 1); /* EOF once the caller has what it needs */
    _exit(0);
  }
  close(hold[0]);
  write_shifted_maps(pid);
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die_errno("open %s", path);
  close(hold[1]);
  *holder = pid;
  return fd;
}

void host_views_reap(struct host_views *views) {
  if (views->holder <= 0) return;
  while (waitpid(views->holder, NULL, 0) < 0)
    if (errno != EINTR) die_errno("wait for the user namespace's holder");
  views->holder = 0;
}

/* The parent of a host path ("/" for "/x"; "/" itself for "/"), as a length of its prefix. */
static size_t parent_len(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash == path ? 1 : (size_t)(slash - path);
}

/* Whether dir (a prefix of path, length len) contains path: "/a" holds "/a/b", not "/ab". */
static bool holds(const char *dir, size_t len, const char *path) {
  return strncmp(dir, path, len) == 0 && (len == 1 || path[len] == '/' || path[len] == '\0');
}

/* A distinct parent dir of some host paths, while the views are planned. */
struct candidate {
  char *dir;
  bool writable;
  uint64_t mnt_id;
};
struct candidates {
  struct candidate *items;
  size_t n, cap;
};

static void add_candidate(struct candidates *c, const char *path, bool writable) {
  size_t len = parent_len(path);
  for (size_t i = 0; i < c->n; i++)
    if (strlen(c->items[i].dir) == len && strncmp(c->items[i].dir, path, len) == 0) {
      c->items[i].writable = c->items[i].writable || writable;
      return;
    }
  if (c->n == c->cap) c->items = xrealloc(c->items, (c->cap = c->cap * 2 + 16) * sizeof *c->items);
  char *dir = strndup(path, len);
  if (dir == NULL) die_errno("strndup");
  c->items[c->n++] = (struct candidate){.dir = dir, .writable = writable};
}

static void add_overlay(struct candidates *c, const struct overlay *ov) {
  for (size_t i = 0; i < ov->nlowers; i++) add_candidate(c, ov->lowers[i], false);
  if (ov->upper != NULL) {
    add_candidate(c, ov->upper, true);
    add_candidate(c, ov->work, true);
  }
}

static int by_length(const void *a, const void *b) {
  size_t la = strlen(((const struct candidate *)a)->dir),
         lb = strlen(((const struct candidate *)b)->dir);
  return la < lb ? -1 : la > lb;
}

/* Each path's parent, minus those an ancestor on the same mount covers (the staging dirs of a
 * build's mounts all sit in its staging dir): one view per remaining dir. */
static void plan_views(const struct spec *spec, struct host_views *views, bool writable[]) {
  struct candidates c = {NULL, 0, 0};
  add_overlay(&c, &spec->root);
  for (size_t i = 0; i < spec->nmounts; i++) {
    const struct mount_op *m = &spec->mounts[i];
    if (m->kind == MOUNT_OVERLAY) add_overlay(&c, &m->overlay);
    if (m->kind == MOUNT_BIND) add_candidate(&c, m->source, !m->readonly);
  }
  for (size_t i = 0; i < c.n; i++) {
    struct castle_statx stx;
    if (syscall(SYS_statx, AT_FDCWD, c.items[i].dir, 0, CASTLE_STATX_MNT_ID, &stx) < 0)
      die_errno("statx %s", c.items[i].dir);
    c.items[i].mnt_id = stx.mnt_id;
  }
  qsort(c.items, c.n, sizeof *c.items, by_length);
  views->n = 0;
  for (size_t i = 0; i < c.n; i++) {
    const struct candidate *d = &c.items[i];
    size_t k = 0;
    while (k < views->n &&
           !(views->dirs[k].mnt_id == d->mnt_id &&
             holds(views->dirs[k].host_dir, strlen(views->dirs[k].host_dir), d->dir)))
      k++;
    if (k < views->n) {
      writable[k] = writable[k] || d->writable;
      free(d->dir);
      continue;
    }
    if (views->n == MAX_HOST_VIEWS)
      die_hint(0, "keep layers and mount sources in fewer directories, or run Castle unprivileged",
               "a root caller's sandbox sees host dirs through idmapped views, at most %d of them",
               MAX_HOST_VIEWS);
    writable[views->n] = d->writable;
    views->dirs[views->n++] = (struct host_view){.host_dir = d->dir, .fd = -1, .mnt_id = d->mnt_id};
  }
  free(c.items);
}

bool host_views_open(const struct spec *spec, struct host_views *views, char *why, size_t size) {
  bool writable[MAX_HOST_VIEWS];
  plan_views(spec, views, writable);
  autoclose int userns = shifted_userns(&views->holder);
  for (size_t i = 0; i < views->n; i++) {
    struct host_view *v = &views->dirs[i];
    v->fd = (int)syscall(SYS_open_tree, AT_FDCWD, v->host_dir, CASTLE_OPEN_TREE_CLONE | O_CLOEXEC);
    if (v->fd < 0) die_errno("open a view of %s", v->host_dir);
    struct castle_mount_attr attr = {
        .attr_set = CASTLE_MOUNT_ATTR_IDMAP | (writable[i] ? 0 : CASTLE_MOUNT_ATTR_RDONLY),
        .userns_fd = (uint64_t)userns};
    if (syscall(SYS_mount_setattr, v->fd, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) {
      snprintf(why, size, "no idmapped mount of %s (its filesystem or the kernel refuses: %s)",
               v->host_dir, strerror(errno));
      for (size_t k = 0; k <= i; k++) close(views->dirs[k].fd);
      views->n = 0;
      host_views_reap(views);
      return false;
    }
  }
  return true;
}

/* The spec path seen through its view: the longest view dir that holds it (a view nested in
 * another is on a different mount). */
static const char *through_view(const struct host_views *views, const char *path) {
  const struct host_view *best = NULL;
  size_t best_len = 0;
  for (size_t i = 0; i < views->n; i++) {
    size_t len = strlen(views->dirs[i].host_dir);
    if (len >= best_len && holds(views->dirs[i].host_dir, len, path)) {
      best = &views->dirs[i];
      best_len = len;
    }
  }
  if (best == NULL) die("%s has no idmapped view (internal error)", path);
  if (best_len == 1)
    return strcmp(path, "/") == 0 ? best->view : xasprintf("%s%s", best->view, path);
  return xasprintf("%s%s", best->view, path + best_len);
}

static void overlay_through_views(const struct host_views *views, struct overlay *ov) {
  for (size_t i = 0; i < ov->nlowers; i++) ov->lowers[i] = through_view(views, ov->lowers[i]);
  if (ov->upper != NULL) {
    ov->upper = through_view(views, ov->upper);
    ov->work = through_view(views, ov->work);
  }
}

void host_views_attach(struct spec *spec, struct host_views *views, const char *base) {
  char *dir = xasprintf("%s/v", base);
  if (mkdir(dir, 0700) < 0) die_errno("mkdir %s", dir);
  for (size_t i = 0; i < views->n; i++) {
    struct host_view *v = &views->dirs[i];
    v->view = xasprintf("%s/%zu", dir, i);
    if (mkdir(v->view, 0700) < 0) die_errno("mkdir %s", v->view);
    if (syscall(SYS_move_mount, v->fd, "", AT_FDCWD, v->view, CASTLE_MOVE_MOUNT_F_EMPTY_PATH) < 0)
      die_errno("attach the idmapped view of %s", v->host_dir);
    close(v->fd);
    v->fd = -1;
  }
  free(dir);
  overlay_through_views(views, &spec->root);
  for (size_t i = 0; i < spec->nmounts; i++) {
    struct mount_op *m = &spec->mounts[i];
    if (m->kind == MOUNT_OVERLAY) overlay_through_views(views, &m->overlay);
    if (m->kind == MOUNT_BIND) m->source = through_view(views, m->source);
  }
}

void host_views_detach(const struct host_views *views) {
  for (size_t i = 0; i < views->n; i++)
    if (umount2(views->dirs[i].view, MNT_DETACH) < 0)
      die_errno("detach the idmapped view of %s", views->dirs[i].host_dir);
}
