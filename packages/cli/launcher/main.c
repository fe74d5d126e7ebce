/* main.c: the `castle` command's entry point, a small native launcher. For `castle run <dir>
 * [-- command...]` of a system whose last normal run left a fast-path entry, it checks that
 * everything the entry recorded still holds and starts the sandbox itself, as the normal run
 * would have (about 2 ms of its own, where Node alone takes 25-60). Anything it cannot confirm
 * — another command, an option, no entry, a changed file or variable, a prune, a running
 * system — and it execs node on the bundle (castle.cjs) with the same arguments, and the normal
 * path runs (and writes the entry again). main() is the sequence in order. */
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launcher.h"

#ifndef CASTLE_NODE_FALLBACK
#define CASTLE_NODE_FALLBACK ""
#endif

/* node on PATH, as `#!/usr/bin/env node` finds it, else the node that built Castle. */
static const char *find_node(void) {
  const char *path = getenv("PATH");
  if (path == NULL || *path == '\0') path = "/usr/local/bin:/usr/bin:/bin";
  autofree char *dirs = xstrdup(path);
  char *save = NULL;
  for (char *dir = strtok_r(dirs, ":", &save); dir != NULL; dir = strtok_r(NULL, ":", &save)) {
    if (*dir == '\0') continue;
    char *candidate = xasprintf("%s/node", dir);
    struct stat st;
    if (stat(candidate, &st) == 0 && S_ISREG(st.st_mode) && access(candidate, X_OK) == 0)
      return candidate;
    free(candidate);
  }
  return CASTLE_NODE_FALLBACK[0] != '\0' ? CASTLE_NODE_FALLBACK : NULL;
}

/* The directory this launcher was installed in (the bundle sits beside it). */
static char *own_dir(void) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) die_errno("cannot find the castle launcher's own path (/proc/self/exe)");
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash == NULL) die("cannot find the castle launcher's directory");
  *slash = '\0';
  return xstrdup(exe);
}

/* path.resolve(cwd, dir): lexical, "." and ".." folded, no trailing slash. */
static char *resolve_dir(const char *dir) {
  char cwd[PATH_MAX];
  autofree char *joined = NULL;
  if (dir[0] == '/') {
    joined = xstrdup(dir);
  } else {
    if (getcwd(cwd, sizeof cwd) == NULL) return NULL;
    joined = xasprintf("%s/%s", cwd, dir);
  }
  char *out = xrealloc(NULL, strlen(joined) + 2);
  size_t len = 0;
  char *save = NULL;
  for (char *part = strtok_r(joined, "/", &save); part != NULL; part = strtok_r(NULL, "/", &save)) {
    if (strcmp(part, ".") == 0) continue;
    if (strcmp(part, "..") == 0) {
      while (len > 0 && out[len - 1] != '/') len--;
      if (len > 0) len--;
      continue;
    }
    out[len++] = '/';
    size_t n = strlen(part);
    memcpy(out + len, part, n);
    len += n;
  }
  if (len == 0) out[len++] = '/';
  out[len] = '\0';
  return out;
}

/* FNV-1a 64 over bytes, as fastpath/entry-key.ts. */
static uint64_t fnv1a(uint64_t hash, const void *data, size_t len) {
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++) hash = (hash ^ p[i]) * 0x100000001b3ULL;
  return hash;
}
#define FNV_OFFSET 0xcbf29ce484222325ULL

/* The store's root, as defaultStoreRoot(); NULL without HOME (Node asks the password database). */
static char *store_root(void) {
  const char *dir = getenv("CASTLE_CACHE_DIR");
  if (dir != NULL && *dir != '\0') return xstrdup(dir);
  const char *cache = getenv("XDG_CACHE_HOME");
  if (cache != NULL && *cache != '\0') return xasprintf("%s/castle", cache);
  const char *home = getenv("HOME");
  if (home == NULL || *home == '\0') return NULL;
  return xasprintf("%s/.cache/castle", home);
}

int main(int argc, char **argv) {
  die_program("castle", 1);
  /* 0. Where the normal path is, for everything the fast path does not answer. */
  autofree char *dist = own_dir();
  autofree char *script = xasprintf("%s/castle.cjs", dist);
  const char *node = find_node();
  const char *debug = getenv("CASTLE_FASTPATH_DEBUG");
  fallthrough_init(argv, node, script, debug != NULL && *debug != '\0');
  const char *enabled = getenv("CASTLE_FASTPATH");
  if (enabled != NULL && strcmp(enabled, "0") == 0) miss("CASTLE_FASTPATH=0");

  /* 1. Only `castle run <dir>` and `castle run <dir> -- command...` (fastpath/entry-key.ts). */
  if (argc < 3 || strcmp(argv[1], "run") != 0) miss("not a `castle run <dir>`");
  const char *target = argv[2];
  if (target[0] == '\0' || target[0] == '-' || strstr(target, "://") != NULL)
    miss("not a `castle run <dir>`");
  if (argc > 3 && (strcmp(argv[3], "--") != 0 || argc == 4))
    miss("options or a branch: the normal path reads them");
  char **command = argc > 3 ? argv + 4 : argv + argc;
  size_t command_len = (size_t)(argv + argc - command);
  bool tty = isatty(0) && isatty(1);

  /* 2. The entry: <store>/fastpath/<fnv(dir)>-<fnv(dir, dir as given, tty, command)>. */
  autofree char *dir = resolve_dir(target);
  autofree char *store = store_root();
  if (dir == NULL || store == NULL) miss("no working directory or no HOME");
  uint64_t key = fnv1a(FNV_OFFSET, dir, strlen(dir) + 1);
  key = fnv1a(key, target, strlen(target) + 1);
  key = fnv1a(key, tty ? "1" : "0", 2);
  for (size_t i = 0; i < command_len; i++) key = fnv1a(key, command[i], strlen(command[i]) + 1);
  autofree char *file =
      xasprintf("%s/fastpath/%016llx-%016llx", store,
                (unsigned long long)fnv1a(FNV_OFFSET, dir, strlen(dir)), (unsigned long long)key);
  size_t len;
  autofree char *buf = read_file(file, ENTRY_MAX_BYTES, &len);
  if (buf == NULL) miss("no entry for this command (%s)", strerror(errno));
  /* An entry is code to run: only one this user wrote (as the store's own files). */
  struct stat st;
  if (stat(file, &st) < 0 || st.st_uid != geteuid()) miss("the entry is not this user's");

  /* 3. Parse it whole into typed ops before anything is checked. */
  struct entry e;
  const char *why;
  if (!entry_parse(buf, len, &e, &why)) miss("%s", why);

  /* 4. It must answer exactly this invocation (a hash collision only misses). */
  bool same = strcmp(e.dir, dir) == 0 && strcmp(e.arg, target) == 0 && e.tty == tty &&
              e.argc == command_len;
  for (size_t i = 0; same && i < command_len; i++) same = strcmp(e.argv[i], command[i]) == 0;
  if (!same) miss("the entry answers another command");

  /* 5. Everything the run depended on must be as recorded, node included. */
  if ((why = world_check(&e, node)) != NULL) miss("%s", why);

  /* 6. Replay the run's preparation: its pin, its root, no prune since, its slot, its state dirs.
   */
  struct holds holds;
  holds_init(&e, &holds);
  if ((why = world_prepare(&e, &holds)) != NULL) miss("%s", why);
  debug_note("taken");

  /* 7. Run the system; exit with what the normal path would. */
  return run_sandbox(&e, &holds);
}
