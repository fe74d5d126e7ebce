/* spec.c: parses the spec the caller writes to --spec-fd into a struct spec, checking every
 * op and every combination before the helper touches anything.
 *
 * Wire format (mirrored by packages/sandbox/src/spec.ts, which writes it):
 *
 *   The spec is a sequence of NUL-terminated strings (so any byte but NUL is allowed inside a
 *   value). The first string is the header "castle-sandbox-spec/1". Then ops follow until the
 *   end of input; each op is a keyword followed by a fixed shape of arguments. A counted list
 *   is a decimal count <n> followed by exactly n strings.
 *
 *     argv <n> <arg>...             the command (once, 1 <= n <= 4096)
 *     env <KEY=VALUE>               one environment entry (<= 4096; nothing else is inherited)
 *     lower <path>                  a lower layer of the root, bottom first (1..500)
 *     upper <path> <work>           the root's writable upper dir and its overlay work dir
 *     bind <src> <dst> ro|rw        bind a host path to dst inside
 *     overlay <dst> <n> <lower>... <upper> <work>
 *                                   an overlay at dst; upper and work are "" for read-only
 *     tmpfs <dst> <bytes> <mode>    a tmpfs at dst; bytes 0 = default, mode in octal
 *     cwd <path>                    working directory inside (default "/")
 *     hostname <name>               default "castle"
 *     uid <n> / gid <n>             ids of the command inside (default 0)
 *     net none|host                 private network with only lo (default) or the host's
 *     overlay-driver auto|kernel|fuse
 *     tty                           give the command a pseudo-terminal
 *     rlimit <name> <soft> <hard>   name as in RLIMIT_<NAME> lower-cased, values or "inf"
 *     keep-caps <n> <CAP_X>...      replaces the default set of kept capabilities
 *     cgroup <dir>                  a cgroup dir (host path: v2, or one per v1 hierarchy) init
 *                                   joins before anything runs (repeatable, <= 8)
 *     tmp-size <bytes>              size of the sandbox's /tmp tmpfs (0 = the kernel's default)
 *     volatile <dst>                mount the overlay at dst ("/" = the root) with "volatile": no
 *                                   sync of its upper at unmount; the marker is cleared after exit
 *     enter <pid>                   run argv inside the running sandbox whose init is host pid
 *                                   <pid> instead of building one (see enter.c); only argv, env,
 *                                   cwd, uid, gid, tty, rlimit, keep-caps and cgroup go with it
 *
 *   Host paths (lower, upper, work, bind src) and sandbox paths (dst, cwd) must be absolute;
 *   sandbox paths must not contain "." or ".." components. Mounts apply in spec order after
 *   the root and the defaults (/proc, /dev, /tmp). */
#include <sys/resource.h>

#include "sandbox.h"

#define SPEC_HEADER "castle-sandbox-spec/1"

enum op_type {
  OP_ARGV, OP_ENV, OP_LOWER, OP_UPPER, OP_BIND, OP_OVERLAY, OP_TMPFS, OP_CWD, OP_HOSTNAME,
  OP_UID, OP_GID, OP_NET, OP_OVERLAY_DRIVER, OP_TTY, OP_RLIMIT, OP_KEEP_CAPS, OP_CGROUP,
  OP_TMP_SIZE, OP_VOLATILE, OP_ENTER,
};

/* Shape of an op: <prefix args> [<n> <list>...] <suffix args>. */
struct op_def {
  const char *keyword;
  enum op_type type;
  unsigned prefix;
  unsigned list_max; /* 0: no counted list */
  unsigned suffix;
  bool builds; /* describes the sandbox to build, so it cannot go with "enter" */
};

static const struct op_def op_defs[] = {
    {"argv", OP_ARGV, 0, MAX_ARGV, 0, false},
    {"env", OP_ENV, 1, 0, 0, false},
    {"lower", OP_LOWER, 1, 0, 0, true},
    {"upper", OP_UPPER, 2, 0, 0, true},
    {"bind", OP_BIND, 3, 0, 0, true},
    {"overlay", OP_OVERLAY, 1, MAX_LOWERS, 2, true},
    {"tmpfs", OP_TMPFS, 3, 0, 0, true},
    {"cwd", OP_CWD, 1, 0, 0, false},
    {"hostname", OP_HOSTNAME, 1, 0, 0, true},
    {"uid", OP_UID, 1, 0, 0, false},
    {"gid", OP_GID, 1, 0, 0, false},
    {"net", OP_NET, 1, 0, 0, true},
    {"overlay-driver", OP_OVERLAY_DRIVER, 1, 0, 0, true},
    {"tty", OP_TTY, 0, 0, 0, false},
    {"rlimit", OP_RLIMIT, 3, 0, 0, false},
    {"keep-caps", OP_KEEP_CAPS, 0, 64, 0, false},
    {"cgroup", OP_CGROUP, 1, 0, 0, false},
    {"tmp-size", OP_TMP_SIZE, 1, 0, 0, true},
    {"volatile", OP_VOLATILE, 1, 0, 0, true},
    {"enter", OP_ENTER, 1, 0, 0, false},
};

struct op {
  const struct op_def *def;
  const char *args[3];  /* prefix then suffix */
  const char **list;    /* points into the spec buffer's string table */
  size_t nlist;
};

static const struct {
  const char *name;
  int resource;
} rlimit_names[] = {
    {"as", RLIMIT_AS},       {"core", RLIMIT_CORE},       {"cpu", RLIMIT_CPU},
    {"data", RLIMIT_DATA},   {"fsize", RLIMIT_FSIZE},     {"memlock", RLIMIT_MEMLOCK},
    {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC},   {"stack", RLIMIT_STACK},
};

struct cursor {
  const char *p, *end;
};

/* The next NUL-terminated string, or NULL at the end of input. */
static const char *next_string(struct cursor *c, const char *context) {
  if (c->p >= c->end) return NULL;
  const char *nul = memchr(c->p, '\0', (size_t)(c->end - c->p));
  if (nul == NULL) die("bad spec: %s: last string is not NUL-terminated", context);
  const char *s = c->p;
  c->p = nul + 1;
  return s;
}

static const char *need_string(struct cursor *c, const char *keyword) {
  const char *s = next_string(c, keyword);
  if (s == NULL) die("bad spec: op \"%s\" is cut short (missing arguments)", keyword);
  return s;
}

static const struct op_def *find_op(const char *keyword) {
  for (size_t i = 0; i < N_ELEMENTS(op_defs); i++)
    if (strcmp(op_defs[i].keyword, keyword) == 0) return &op_defs[i];
  return NULL;
}

/* Splits the buffer into ops; only the shape is checked here, the meaning in fill_spec. */
static struct op *tokenize(char *buf, size_t len, size_t *nops) {
  struct cursor c = {buf, buf + len};
  const char *header = next_string(&c, "header");
  if (header == NULL || strcmp(header, SPEC_HEADER) != 0)
    die("bad spec: expected the header \"%s\" (helper and caller from different versions?)",
        SPEC_HEADER);
  size_t cap = 64, n = 0;
  struct op *ops = xmalloc(cap * sizeof *ops);
  const char *keyword;
  while ((keyword = next_string(&c, "op")) != NULL) {
    const struct op_def *def = find_op(keyword);
    if (def == NULL) die("bad spec: unknown op \"%.64s\"", keyword);
    if (n == cap) ops = xrealloc(ops, (cap *= 2) * sizeof *ops);
    struct op *op = &ops[n++];
    *op = (struct op){.def = def};
    unsigned a = 0;
    for (unsigned i = 0; i < def->prefix; i++) op->args[a++] = need_string(&c, keyword);
    if (def->list_max > 0) {
      uint64_t count;
      const char *s = need_string(&c, keyword);
      if (!parse_u64(s, def->list_max, &count))
        die("bad spec: op \"%s\": count \"%.32s\" is not a number in 0..%u", keyword, s,
            def->list_max);
      op->list = xcalloc(count + 1, sizeof *op->list);
      op->nlist = count;
      for (uint64_t i = 0; i < count; i++) op->list[i] = need_string(&c, keyword);
    }
    for (unsigned i = 0; i < def->suffix; i++) op->args[a++] = need_string(&c, keyword);
  }
  *nops = n;
  return ops;
}

static void check_host_path(const char *path, const char *what) {
  if (path[0] != '/') die("bad spec: %s \"%.200s\" is not an absolute path", what, path);
  if (strlen(path) >= 4000) die("bad spec: %s is longer than 4000 bytes", what);
}

/* Sandbox paths are joined to the new root, so they must not climb out of it. */
static void check_sandbox_path(const char *path, const char *what) {
  check_host_path(path, what);
  for (const char *p = path; *p != '\0';) {
    while (*p == '/') p++;
    size_t n = strcspn(p, "/");
    if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
      die("bad spec: %s \"%.200s\" has a \".\" or \"..\" component", what, path);
    p += n;
  }
}

static uint32_t parse_id(const char *s, const char *what) {
  uint64_t v;
  if (!parse_u64(s, UINT32_MAX - 1, &v)) die("bad spec: %s \"%.32s\" is not a valid id", what, s);
  return (uint32_t)v;
}

static uint64_t parse_limit(const char *s, const char *name) {
  uint64_t v;
  if (strcmp(s, "inf") == 0) return UINT64_MAX;
  if (!parse_u64(s, UINT64_MAX - 1, &v))
    die("bad spec: rlimit %s: \"%.32s\" is not a number or \"inf\"", name, s);
  return v;
}

static void fill_overlay(struct overlay *ov, const char **lowers, size_t n, const char *upper,
                         const char *work, const char *what) {
  if (n == 0 || n > MAX_LOWERS)
    die("bad spec: %s needs 1..%d lowers, got %zu", what, MAX_LOWERS, n);
  for (size_t i = 0; i < n; i++) check_host_path(lowers[i], "lower");
  bool has_upper = upper != NULL && upper[0] != '\0';
  bool has_work = work != NULL && work[0] != '\0';
  if (has_upper != has_work) die("bad spec: %s: upper and work go together", what);
  if (has_upper) {
    check_host_path(upper, "upper");
    check_host_path(work, "work");
  }
  ov->lowers = lowers;
  ov->nlowers = n;
  ov->upper = has_upper ? upper : NULL;
  ov->work = has_upper ? work : NULL;
}

/* The one switch over ops: every op becomes typed state, checked as it goes. */
static void fill_spec(struct op *ops, size_t nops, struct spec *s) {
  size_t nlowers = 0;
  const char **root_lowers = xcalloc(MAX_LOWERS + 1, sizeof *root_lowers);
  s->env = xcalloc(MAX_ENV + 1, sizeof *s->env);
  s->mounts = xcalloc(MAX_MOUNTS, sizeof *s->mounts);
  const char *root_upper = NULL, *root_work = NULL;
  bool seen_caps = false, seen_uid = false, seen_gid = false;
  const char *volatiles[64];
  size_t nvolatile = 0;
  const char *first_build_op = NULL;

  for (size_t i = 0; i < nops; i++) {
    struct op *op = &ops[i];
    const char *kw = op->def->keyword;
    if (op->def->builds && first_build_op == NULL) first_build_op = kw;
    switch (op->def->type) {
      case OP_ARGV:
        if (s->argv != NULL) die("bad spec: argv given twice");
        if (op->nlist == 0 || op->list[0][0] == '\0') die("bad spec: argv is empty");
        s->argv = op->list;
        s->argc = op->nlist;
        break;
      case OP_ENV: {
        const char *eq = strchr(op->args[0], '=');
        if (eq == NULL || eq == op->args[0])
          die("bad spec: env entry \"%.64s\" is not KEY=VALUE", op->args[0]);
        if (s->nenv == MAX_ENV) die("bad spec: more than %d env entries", MAX_ENV);
        s->env[s->nenv++] = op->args[0];
        break;
      }
      case OP_LOWER:
        if (nlowers == MAX_LOWERS) die("bad spec: more than %d root lowers", MAX_LOWERS);
        root_lowers[nlowers++] = op->args[0];
        break;
      case OP_UPPER:
        if (root_upper != NULL) die("bad spec: root upper given twice");
        root_upper = op->args[0];
        root_work = op->args[1];
        if (root_upper[0] == '\0' || root_work[0] == '\0')
          die("bad spec: upper needs both an upper and a work directory");
        break;
      case OP_BIND:
      case OP_OVERLAY:
      case OP_TMPFS: {
        if (s->nmounts == MAX_MOUNTS) die("bad spec: more than %d mounts", MAX_MOUNTS);
        struct mount_op *m = &s->mounts[s->nmounts++];
        m->target = op->args[op->def->type == OP_BIND ? 1 : 0];
        check_sandbox_path(m->target, "mount target");
        if (strcmp(m->target, "/") == 0) die("bad spec: %s target \"/\": use the root instead", kw);
        if (op->def->type == OP_BIND) {
          m->kind = MOUNT_BIND;
          m->source = op->args[0];
          check_host_path(m->source, "bind source");
          if (strcmp(op->args[2], "ro") != 0 && strcmp(op->args[2], "rw") != 0)
            die("bad spec: bind %.200s: mode must be ro or rw", m->target);
          m->readonly = op->args[2][1] == 'o';
        } else if (op->def->type == OP_OVERLAY) {
          m->kind = MOUNT_OVERLAY;
          fill_overlay(&m->overlay, op->list, op->nlist, op->args[1], op->args[2], "overlay mount");
        } else {
          uint64_t mode;
          m->kind = MOUNT_TMPFS;
          if (!parse_u64(op->args[1], UINT64_MAX - 1, &m->size))
            die("bad spec: tmpfs %.200s: size \"%.32s\" is not a number", m->target, op->args[1]);
          char *end;
          errno = 0;
          mode = strtoull(op->args[2], &end, 8);
          if (errno != 0 || *end != '\0' || op->args[2][0] == '\0' || mode > 07777)
            die("bad spec: tmpfs %.200s: mode \"%.32s\" is not octal <= 7777", m->target,
                op->args[2]);
          m->mode = (unsigned)mode;
        }
        break;
      }
      case OP_CWD:
        check_sandbox_path(op->args[0], "cwd");
        s->cwd = op->args[0];
        break;
      case OP_HOSTNAME: {
        size_t n = strlen(op->args[0]);
        if (n == 0 || n > 64) die("bad spec: hostname must be 1..64 bytes");
        s->hostname = op->args[0];
        break;
      }
      case OP_UID:
        if (seen_uid) die("bad spec: uid given twice");
        seen_uid = true;
        s->uid = parse_id(op->args[0], "uid");
        break;
      case OP_GID:
        if (seen_gid) die("bad spec: gid given twice");
        seen_gid = true;
        s->gid = parse_id(op->args[0], "gid");
        break;
      case OP_NET:
        if (strcmp(op->args[0], "none") == 0) s->net_host = false;
        else if (strcmp(op->args[0], "host") == 0) s->net_host = true;
        else die("bad spec: net must be none or host, got \"%.32s\"", op->args[0]);
        break;
      case OP_OVERLAY_DRIVER:
        if (strcmp(op->args[0], "auto") == 0) s->driver = DRIVER_AUTO;
        else if (strcmp(op->args[0], "kernel") == 0) s->driver = DRIVER_KERNEL;
        else if (strcmp(op->args[0], "fuse") == 0) s->driver = DRIVER_FUSE;
        else die("bad spec: overlay-driver must be auto, kernel or fuse");
        break;
      case OP_TTY:
        s->tty = true;
        break;
      case OP_RLIMIT: {
        const char *name = op->args[0];
        size_t k = 0;
        while (k < N_ELEMENTS(rlimit_names) && strcmp(rlimit_names[k].name, name) != 0) k++;
        if (k == N_ELEMENTS(rlimit_names)) die("bad spec: unknown rlimit \"%.32s\"", name);
        for (size_t j = 0; j < s->nrlimits; j++)
          if (s->rlimits[j].resource == rlimit_names[k].resource)
            die("bad spec: rlimit %s given twice", name);
        struct rlimit_op *r = &s->rlimits[s->nrlimits++];
        r->resource = rlimit_names[k].resource;
        r->name = rlimit_names[k].name;
        r->soft = parse_limit(op->args[1], name);
        r->hard = parse_limit(op->args[2], name);
        if (r->soft > r->hard) die("bad spec: rlimit %s: soft limit above hard limit", name);
        break;
      }
      case OP_KEEP_CAPS:
        if (seen_caps) die("bad spec: keep-caps given twice");
        seen_caps = true;
        s->keep_caps = 0;
        for (size_t j = 0; j < op->nlist; j++) {
          int cap = cap_from_name(op->list[j]);
          if (cap < 0) die("bad spec: unknown capability \"%.32s\"", op->list[j]);
          s->keep_caps |= 1ULL << cap;
        }
        break;
      case OP_VOLATILE:
        /* Resolved below, once every overlay is known. */
        if (nvolatile == N_ELEMENTS(volatiles)) die("bad spec: too many volatile ops");
        volatiles[nvolatile++] = op->args[0];
        break;
      case OP_CGROUP:
        check_host_path(op->args[0], "cgroup");
        if (s->ncgroups == MAX_CGROUPS) die("bad spec: more than %d cgroup dirs", MAX_CGROUPS);
        s->cgroups[s->ncgroups++] = op->args[0];
        break;
      case OP_TMP_SIZE:
        if (!parse_u64(op->args[0], UINT64_MAX - 1, &s->tmp_size))
          die("bad spec: tmp-size \"%.32s\" is not a number of bytes", op->args[0]);
        break;
      case OP_ENTER: {
        uint64_t pid;
        if (s->enter_pid != 0) die("bad spec: enter given twice");
        if (!parse_u64(op->args[0], 4194304, &pid) || pid < 1)
          die("bad spec: enter \"%.32s\" is not a pid in 1..4194304", op->args[0]);
        s->enter_pid = (pid_t)pid;
        break;
      }
      default:
        die("bad spec: op \"%s\" is not handled (internal error)", kw);
    }
  }

  /* Combinations, now that everything is known. */
  if (s->argv == NULL) die("bad spec: no argv");
  if (s->enter_pid != 0) {
    /* The sandbox exists already: its filesystem, hostname and network are its own. */
    if (first_build_op != NULL)
      die("bad spec: op \"%s\" does not go with enter (the sandbox already exists)",
          first_build_op);
    if (!seen_caps) s->keep_caps = caps_default_keep();
    s->env[s->nenv] = NULL;
    free(root_lowers);
    return;
  }
  if (nlowers == 0) die("bad spec: the root needs at least one lower");
  fill_overlay(&s->root, root_lowers, nlowers, root_upper, root_work, "root");
  if (!seen_caps) s->keep_caps = caps_default_keep();
  for (size_t i = 0; i < nvolatile; i++) {
    struct overlay *ov = strcmp(volatiles[i], "/") == 0 ? &s->root : NULL;
    for (size_t j = 0; ov == NULL && j < s->nmounts; j++)
      if (s->mounts[j].kind == MOUNT_OVERLAY && strcmp(s->mounts[j].target, volatiles[i]) == 0)
        ov = &s->mounts[j].overlay;
    if (ov == NULL || ov->upper == NULL)
      die("bad spec: volatile %.200s: no overlay with an upper there", volatiles[i]);
    ov->volatile_ = true;
  }
  s->env[s->nenv] = NULL;
}

void spec_parse(char *buf, size_t len, struct spec *out) {
  *out = (struct spec){.buf = buf, .cwd = "/", .hostname = "castle", .driver = DRIVER_AUTO};
  size_t nops;
  struct op *ops = tokenize(buf, len, &nops);
  fill_spec(ops, nops, out);
  free(ops); /* the lists it points to stay: the spec keeps them */
}
