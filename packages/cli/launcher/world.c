/* world.c: whether what a fast-path entry recorded still holds — the environment, the working
 * directory, node, every file's identity (Castle's own, what the definition and its bundle read,
 * the local sources, the store's records), the prune generation, the trees, the system's root —
 * and the replay of what the normal run does before it starts the sandbox (pin the layers, touch
 * the root, check no prune started, claim the system's slot, make its state dirs). Each answers
 * why not in a few words, which the caller passes on when it falls through. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "launcher.h"

extern char **environ;

static struct identity identity_from_stat(const struct stat *st) {
  struct identity id = {
      .absent = false,
      .dev = (double)st->st_dev,
      .ino = (double)st->st_ino,
      .mode = (double)st->st_mode,
      .size = (double)st->st_size,
      /* Node's own arithmetic (lib/internal/fs/utils.js msFromTimeSpec), in doubles. */
      .mtime_ms = (double)st->st_mtim.tv_sec * 1000 + (double)st->st_mtim.tv_nsec / 1000000,
      .ctime_ms = (double)st->st_ctim.tv_sec * 1000 + (double)st->st_ctim.tv_nsec / 1000000,
  };
  return id;
}

bool identity_of(const char *path, bool follow, struct identity *out) {
  struct stat st;
  if ((follow ? stat(path, &st) : lstat(path, &st)) < 0) {
    memset(out, 0, sizeof *out);
    out->absent = true;
    return false;
  }
  *out = identity_from_stat(&st);
  return true;
}

static bool same_identity(const struct identity *a, const struct identity *b) {
  if (a->absent || b->absent) return a->absent == b->absent;
  return a->dev == b->dev && a->ino == b->ino && a->mode == b->mode && a->size == b->size &&
         a->mtime_ms == b->mtime_ms && a->ctime_ms == b->ctime_ms;
}

static bool has_prefix(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The fast path's own switches are never part of an entry. */
static bool own_variable(const char *name) {
  return has_prefix(name, "CASTLE_FASTPATH");
}

static const char *check_env(const struct entry *e) {
  for (size_t i = 0; i < e->n_env; i++) {
    const char *now = getenv(e->env[i].name);
    const char *then = e->env[i].value;
    if ((now == NULL) != (then == NULL) || (now != NULL && strcmp(now, then) != 0))
      return xasprintf("$%s changed", e->env[i].name);
  }
  /* No variable with a watched prefix may have appeared. */
  for (char **var = environ; *var != NULL; var++) {
    const char *eq = strchr(*var, '=');
    if (eq == NULL) continue;
    size_t len = (size_t)(eq - *var);
    char name[256];
    if (len >= sizeof name) continue;
    memcpy(name, *var, len);
    name[len] = '\0';
    if (own_variable(name)) continue;
    bool watched = false;
    for (size_t p = 0; p < e->n_prefixes && !watched; p++)
      watched = has_prefix(name, e->prefixes[p]);
    if (!watched) continue;
    bool listed = false;
    for (size_t i = 0; i < e->n_env && !listed; i++) listed = strcmp(e->env[i].name, name) == 0;
    if (!listed) return xasprintf("$%s is new", name);
  }
  return NULL;
}

static bool read_u64_file(const char *path, uint64_t *out) {
  autofree char *text = read_file(path, 64, NULL);
  *out = 0;
  if (text == NULL) return errno == ENOENT; /* never pruned: generation 0 */
  char *end;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno != 0 || end == text) return false;
  *out = v;
  return true;
}

/* The root must still be {prefix}<use time>{suffix}: the same layers, only the time moved. */
static bool root_unchanged(const struct entry *e) {
  size_t len;
  autofree char *text = read_file(e->root_file, 1u << 24, &len);
  if (text == NULL) return false;
  size_t pre = strlen(e->root_prefix), suf = strlen(e->root_suffix);
  if (len < pre + suf || len - pre - suf > 40) return false;
  if (memcmp(text, e->root_prefix, pre) != 0 || memcmp(text + len - suf, e->root_suffix, suf) != 0)
    return false;
  return memchr(text + pre, '"', len - pre - suf) == NULL;
}

const char *world_check(const struct entry *e, const char *node) {
  const char *why = check_env(e);
  if (why != NULL) return why;
  if (e->cwd != NULL) {
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd) == NULL || strcmp(cwd, e->cwd) != 0)
      return "the working directory changed";
  }
  uint64_t generation;
  if (!read_u64_file(e->generation_file, &generation) || generation != e->generation)
    return "the store was pruned";
  struct identity node_now;
  if (node == NULL || !identity_of(node, true, &node_now)) return "no node to fall through to";
  if (!same_identity(&node_now, &e->node)) return "node changed";
  for (size_t i = 0; i < e->n_files; i++) {
    struct identity now;
    identity_of(e->files[i].path, e->files[i].follow, &now);
    if (!same_identity(&now, &e->files[i].id)) return xasprintf("%s changed", e->files[i].path);
  }
  for (size_t i = 0; i < e->n_trees; i++) {
    struct stat st;
    if (lstat(e->trees[i], &st) < 0 || !S_ISDIR(st.st_mode))
      return xasprintf("the tree %s is gone", e->trees[i]);
  }
  if (!root_unchanged(e)) return "the system's root changed";
  for (size_t i = 0; i < e->n_exists; i++) {
    struct stat st;
    bool found =
        (e->exists[i].follow ? stat(e->exists[i].path, &st) : lstat(e->exists[i].path, &st)) == 0;
    if (found != e->exists[i].exists) return xasprintf("%s appeared or went", e->exists[i].path);
  }
  return NULL;
}

/* mkdir -p; false (errno set) if a part cannot be made or is not a directory. */
static bool make_dirs(const char *path) {
  if (mkdir(path, 0777) == 0) return true;
  if (errno == EEXIST) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
  }
  if (errno != ENOENT) return false;
  autofree char *parent = xstrdup(path);
  char *slash = strrchr(parent, '/');
  if (slash == NULL || slash == parent) return false;
  *slash = '\0';
  if (!make_dirs(parent)) return false;
  return mkdir(path, 0777) == 0 || errno == EEXIST;
}

/* As system-state.ts: overlayfs needs an empty work dir; each run leaves the kernel's empty
 * work/work behind, removed with one rmdir. Anything else is the normal path's to clear. */
static bool empty_work_dir(const char *work) {
  DIR *dir = opendir(work);
  if (dir == NULL) return errno == ENOENT && mkdir(work, 0777) == 0;
  bool ok = true;
  struct dirent *d;
  while (ok && (d = readdir(dir)) != NULL) {
    if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0) continue;
    autofree char *path = xasprintf("%s/%s", work, d->d_name);
    ok = rmdir(path) == 0;
  }
  closedir(dir);
  return ok;
}

const char *world_prepare(const struct entry *e, struct holds *h) {
  /* The run's pin, before its root is recorded: a prune either sees it or moves the generation. */
  const char *why = hold_pin(e, h);
  if (why != NULL) return why;
  /* The run's root record: same layers, so only its time moves (recordRoot). */
  if (utimensat(AT_FDCWD, e->root_file, NULL, 0) < 0) why = "cannot touch the system's root";
  /* A prune that started before the root was touched may remove what the checks found. */
  uint64_t generation;
  if (why == NULL &&
      (!read_u64_file(e->generation_file, &generation) || generation != e->generation))
    why = "a prune started";
  /* One persistent instance per system, claimed before its upper dir is touched. */
  if (why == NULL) why = claim_slot(e, h);
  if (why == NULL && !make_dirs(e->instance_dir)) why = "cannot make the instance registry";
  if (why == NULL && (!make_dirs(e->upper) || !make_dirs(e->nested)))
    why = "cannot make the system's state dirs";
  for (size_t i = 0; why == NULL && i < e->n_mkdirs; i++)
    if (!make_dirs(e->mkdirs[i])) why = "cannot make the system's dirs";
  if (why == NULL && !empty_work_dir(e->work)) why = "the work dir holds leftovers";
  if (why != NULL) holds_abandon(h);
  return why;
}
