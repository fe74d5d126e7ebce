/* entry.c: reads a fast-path entry (written by packages/cli/src/fastpath/entry-format.ts) into
 * typed ops before anything is checked: "castle-fastpath/1", then ops, each a keyword and a
 * fixed shape of NUL-terminated strings, then `spec <len>` and that many raw bytes, then "end".
 * Anything unexpected — an unknown op, a bad number, a missing op, bytes after the end — makes
 * the whole entry unusable (the caller falls through to the normal path, which rewrites it). */
#include <math.h>
#include <signal.h>

#include "launcher.h"

struct cursor {
  char *at, *end;
  const char *why;
};

/* The next NUL-terminated string, or NULL (with why) when the entry ends first. */
static const char *next(struct cursor *c) {
  if (c->why != NULL) return NULL;
  if (c->at >= c->end) {
    c->why = "the entry is cut short";
    return NULL;
  }
  char *nul = memchr(c->at, '\0', (size_t)(c->end - c->at));
  if (nul == NULL) {
    c->why = "the entry is cut short";
    return NULL;
  }
  const char *s = c->at;
  c->at = nul + 1;
  return s;
}

static bool number(struct cursor *c, uint64_t max, uint64_t *out) {
  const char *s = next(c);
  if (s == NULL) return false;
  if (!parse_u64(s, max, out)) {
    c->why = "the entry holds a bad number";
    return false;
  }
  return true;
}

static bool flag(struct cursor *c, bool *out) {
  uint64_t v;
  if (!number(c, 1, &v)) return false;
  *out = v == 1;
  return true;
}

/* "-" or "dev:ino:mode:size:mtimeMs:ctimeMs" (JavaScript numbers). */
static bool identity(struct cursor *c, struct identity *out) {
  const char *s = next(c);
  if (s == NULL) return false;
  memset(out, 0, sizeof *out);
  if (strcmp(s, "-") == 0) {
    out->absent = true;
    return true;
  }
  double *fields[] = {&out->dev, &out->ino, &out->mode, &out->size, &out->mtime_ms, &out->ctime_ms};
  for (size_t i = 0; i < N_ELEMENTS(fields); i++) {
    char *end;
    errno = 0;
    *fields[i] = strtod(s, &end);
    if (errno != 0 || end == s || !isfinite(*fields[i]) ||
        *end != (i + 1 < N_ELEMENTS(fields) ? ':' : '\0')) {
      c->why = "the entry holds a bad identity";
      return false;
    }
    s = end + 1;
  }
  return true;
}

/* Grows *array by one element of size, capped. */
static void *grow(void *array, size_t *n, size_t size, struct cursor *c) {
  if (*n >= ENTRY_MAX_ITEMS) {
    c->why = "the entry lists too much";
    return array;
  }
  (*n)++;
  return xrealloc(array, *n * size);
}

static const struct {
  const char *name;
  int number;
} SIGNALS[] = {
    {"SIGHUP", SIGHUP},   {"SIGINT", SIGINT},   {"SIGQUIT", SIGQUIT},   {"SIGTERM", SIGTERM},
    {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2}, {"SIGWINCH", SIGWINCH}, {"SIGCONT", SIGCONT},
    {"SIGTSTP", SIGTSTP}, {"SIGALRM", SIGALRM},
};

int signal_number(const char *name) {
  for (size_t i = 0; i < N_ELEMENTS(SIGNALS); i++)
    if (strcmp(SIGNALS[i].name, name) == 0) return SIGNALS[i].number;
  return 0;
}

/* "SIGTERM,SIGHUP" (or "") into out; false on an unknown name or too many. */
static bool signal_list(struct cursor *c, int *out, size_t *n) {
  const char *s = next(c);
  if (s == NULL) return false;
  char copy[256];
  if (strlen(s) >= sizeof copy) {
    c->why = "the entry names too many signals";
    return false;
  }
  strcpy(copy, s);
  *n = 0;
  char *save = NULL;
  for (char *name = strtok_r(copy, ",", &save); name != NULL; name = strtok_r(NULL, ",", &save)) {
    int sig = signal_number(name);
    if (sig == 0 || *n >= ENTRY_MAX_SIGNALS) {
      c->why = "the entry names a signal it should not";
      return false;
    }
    out[(*n)++] = sig;
  }
  return true;
}

bool entry_parse(char *buf, size_t len, struct entry *e, const char **why) {
  struct cursor c = {buf, buf + len, NULL};
  memset(e, 0, sizeof *e);
  const char *header = next(&c);
  if (header == NULL || strcmp(header, "castle-fastpath/1") != 0) {
    *why = "the entry is not castle-fastpath/1";
    return false;
  }
  bool have_key = false, have_node = false, have_generation = false, have_root = false,
       have_pin = false, have_upper = false, have_signals = false, have_instance = false;
  for (;;) {
    const char *op = next(&c);
    if (op == NULL) break;
    if (strcmp(op, "key") == 0) {
      uint64_t argc;
      e->dir = next(&c);
      e->arg = next(&c);
      if (!flag(&c, &e->tty) || !number(&c, 4096, &argc)) break;
      e->argc = (size_t)argc;
      e->argv = xrealloc(NULL, (e->argc + 1) * sizeof *e->argv);
      for (size_t i = 0; i < e->argc; i++) e->argv[i] = next(&c);
      e->argv[e->argc] = NULL;
      have_key = true;
    } else if (strcmp(op, "node") == 0) {
      have_node = identity(&c, &e->node);
    } else if (strcmp(op, "env") == 0 || strcmp(op, "unset") == 0) {
      e->env = grow(e->env, &e->n_env, sizeof *e->env, &c);
      e->env[e->n_env - 1].name = next(&c);
      e->env[e->n_env - 1].value = op[0] == 'e' ? next(&c) : NULL;
    } else if (strcmp(op, "env-prefix") == 0) {
      e->prefixes = grow(e->prefixes, &e->n_prefixes, sizeof *e->prefixes, &c);
      e->prefixes[e->n_prefixes - 1] = next(&c);
    } else if (strcmp(op, "cwd") == 0) {
      e->cwd = next(&c);
    } else if (strcmp(op, "stat") == 0 || strcmp(op, "lstat") == 0) {
      e->files = grow(e->files, &e->n_files, sizeof *e->files, &c);
      struct file_check *f = &e->files[e->n_files - 1];
      f->path = next(&c);
      f->follow = op[0] == 's';
      identity(&c, &f->id);
    } else if (strcmp(op, "generation") == 0) {
      e->generation_file = next(&c);
      have_generation = number(&c, UINT64_MAX, &e->generation);
    } else if (strcmp(op, "tree") == 0) {
      e->trees = grow(e->trees, &e->n_trees, sizeof *e->trees, &c);
      e->trees[e->n_trees - 1] = next(&c);
    } else if (strcmp(op, "root") == 0) {
      e->root_file = next(&c);
      e->root_prefix = next(&c);
      e->root_suffix = next(&c);
      have_root = true;
    } else if (strcmp(op, "pin") == 0) {
      e->pin_dir = next(&c);
      e->pin_tmp = next(&c);
      e->pin_tail = next(&c);
      have_pin = true;
    } else if (strcmp(op, "slot") == 0) {
      e->slot = next(&c);
    } else if (strcmp(op, "upper") == 0) {
      e->upper = next(&c);
      e->work = next(&c);
      e->nested = next(&c);
      have_upper = true;
    } else if (strcmp(op, "mkdir") == 0) {
      e->mkdirs = grow(e->mkdirs, &e->n_mkdirs, sizeof *e->mkdirs, &c);
      e->mkdirs[e->n_mkdirs - 1] = next(&c);
    } else if (strcmp(op, "exists") == 0 || strcmp(op, "lexists") == 0) {
      e->exists = grow(e->exists, &e->n_exists, sizeof *e->exists, &c);
      e->exists[e->n_exists - 1].path = next(&c);
      e->exists[e->n_exists - 1].follow = op[0] == 'e';
      flag(&c, &e->exists[e->n_exists - 1].exists);
    } else if (strcmp(op, "helper") == 0) {
      e->helper = next(&c);
    } else if (strcmp(op, "signals") == 0) {
      have_signals =
          signal_list(&c, e->forward, &e->n_forward) && signal_list(&c, e->ignore, &e->n_ignore);
    } else if (strcmp(op, "instance") == 0) {
      e->instance_dir = next(&c);
      e->instance_system = next(&c);
      e->instance_fields = next(&c);
      have_instance = true;
    } else if (strcmp(op, "error") == 0) {
      uint64_t status, exit_code;
      if (e->n_errors >= N_ELEMENTS(e->errors)) {
        c.why = "the entry has too many error texts";
        break;
      }
      struct error_text *t = &e->errors[e->n_errors++];
      if (!number(&c, 255, &status) || !number(&c, 255, &exit_code)) break;
      t->status = (int)status;
      t->exit = (int)exit_code;
      t->prefix = next(&c);
      t->suffix = next(&c);
      flag(&c, &t->with_message);
    } else if (strcmp(op, "spec") == 0) {
      uint64_t spec_len;
      if (!number(&c, ENTRY_MAX_BYTES, &spec_len)) break;
      if ((uint64_t)(c.end - c.at) < spec_len + 4) {
        c.why = "the entry is cut short";
        break;
      }
      e->spec = c.at;
      e->spec_len = (size_t)spec_len;
      c.at += spec_len;
      const char *end = next(&c);
      if (end == NULL || strcmp(end, "end") != 0 || c.at != c.end) {
        c.why = "the entry does not end after its spec";
        break;
      }
      if (!have_key || !have_node || !have_generation || !have_root || !have_pin ||
          e->slot == NULL || !have_upper || !have_signals || !have_instance || e->helper == NULL ||
          e->n_errors == 0) {
        c.why = "the entry lacks an op";
        break;
      }
      return true;
    } else {
      c.why = "the entry holds an unknown op";
      break;
    }
  }
  *why = c.why != NULL ? c.why : "the entry is damaged";
  return false;
}
