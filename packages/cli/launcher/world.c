/* world.c: whether what a fast-path entry recorded still holds — the environment, the working
 * directory, node, every file's identity (Castle's own, what the definition and its bundle read,
 * the local sources, the store's records), the prune generation, the trees, the system's root,
 * the system not running — and the replay of what the normal run does before it starts the
 * sandbox (touch the root, check no prune started, make the system's state dirs). Each check
 * answers why not in a few words, which the caller passes on when it falls through. */
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

/* Field 22 of /proc/<pid>/stat; false when the process is gone or a zombie (as instances.ts). */
static bool process_start(long pid, unsigned long long *start) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  autofree char *text = read_file(path, 4096, NULL);
  if (text == NULL) return false;
  char *close = strrchr(text, ')');
  if (close == NULL || close[1] != ' ') return false;
  char *p = close + 2;
  if (*p == 'Z' || *p == 'X') return false;
  for (int field = 0; field < 19; field++) {
    p = strchr(p, ' ');
    if (p == NULL) return false;
    p++;
  }
  *start = strtoull(p, NULL, 10);
  return true;
}

struct instance_fields {
  char *id, *system;
  long pid;
  unsigned long long pid_start;
  bool have_pid;
};

static void instance_field(void *ctx, const char *key, const char *value, bool is_string) {
  struct instance_fields *f = ctx;
  if (is_string && strcmp(key, "id") == 0) {
    free(f->id);
    f->id = xstrdup(value);
  } else if (is_string && strcmp(key, "system") == 0) {
    free(f->system);
    f->system = xstrdup(value);
  } else if (!is_string && strcmp(key, "pid") == 0) {
    f->pid = strtol(value, NULL, 10);
    f->have_pid = f->pid > 0;
  } else if (!is_string && strcmp(key, "pidStart") == 0) {
    f->pid_start = strtoull(value, NULL, 10);
  }
}

/* As runSystem: a live, persistent (not ".e") instance of the system means it is running.
 * Entries of dead processes are removed on the way, as the registry's list() does. */
static const char *check_not_running(const struct entry *e) {
  DIR *dir = opendir(e->busy_dir);
  if (dir == NULL) return errno == ENOENT ? NULL : "cannot read the instance registry";
  const char *why = NULL;
  struct dirent *d;
  while (why == NULL && (d = readdir(dir)) != NULL) {
    size_t len = strlen(d->d_name);
    if (len < 5 || strcmp(d->d_name + len - 5, ".json") != 0) continue;
    autofree char *path = xasprintf("%s/%s", e->busy_dir, d->d_name);
    autofree char *text = read_file(path, 1u << 20, NULL);
    if (text == NULL) continue;
    struct instance_fields f = {0};
    bool parsed = json_object_fields(text, instance_field, &f);
    if (parsed && f.id != NULL && f.have_pid) {
      unsigned long long start;
      bool alive = process_start(f.pid, &start) && (f.pid_start == 0 || start == f.pid_start);
      if (!alive) {
        (void)unlink(path);
      } else if (f.system != NULL && strcmp(f.system, e->busy_system) == 0 &&
                 strstr(f.id, ".e") == NULL) {
        why = "the system is already running";
      }
    }
    free(f.id);
    free(f.system);
  }
  closedir(dir);
  return why;
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
    if ((stat(e->exists[i].path, &st) == 0) != e->exists[i].exists)
      return xasprintf("%s appeared or went", e->exists[i].path);
  }
  return check_not_running(e);
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

const char *world_prepare(const struct entry *e) {
  /* The run's root record: same layers, so only its time moves (recordRoot). */
  if (utimensat(AT_FDCWD, e->root_file, NULL, 0) < 0) return "cannot touch the system's root";
  /* A prune that started before the root was touched may remove what the checks found. */
  uint64_t generation;
  if (!read_u64_file(e->generation_file, &generation) || generation != e->generation)
    return "a prune started";
  if (!make_dirs(e->instance_dir)) return "cannot make the instance registry";
  if (!make_dirs(e->upper) || !make_dirs(e->nested)) return "cannot make the system's state dirs";
  if (!empty_work_dir(e->work)) return "the work dir holds leftovers";
  return NULL;
}
