/* claim.c: what a run holds while it runs, taken and released as the normal path does (the
 * files are the same, so `castle ps`, `cache prune` and a second `castle run` cannot tell the
 * two apart): its pin on the layers it uses (the store's pins/<pid>-0.json, pins.ts: no prune
 * removes them meanwhile), its system's slot (state/slots/<system>, instances.ts: taken by
 * link(2), so of two runs exactly one wins; a slot that exists is the normal path's to judge),
 * and its instance record (state/instances/<id>.json). */
#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <time.h>

#include "launcher.h"

void holds_init(const struct entry *e, struct holds *h) {
  memset(h, 0, sizeof *h);
  unsigned char r[3] = {0};
  if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    unsigned v = (unsigned)t.tv_nsec ^ (unsigned)getpid();
    memcpy(r, &v, sizeof r);
  }
  snprintf(h->id, sizeof h->id, "%.120s-%02x%02x%02x", e->instance_system, r[0], r[1], r[2]);
}

static unsigned long long own_start(void) {
  unsigned long long start = 0;
  return process_start(getpid(), &start) ? start : 0;
}

const char *hold_pin(const struct entry *e, struct holds *h) {
  char hex[9];
  unique_hex(hex);
  autofree char *text =
      xasprintf("{\"pid\":%d,\"pidStart\":%llu,%s", (int)getpid(), own_start(), e->pin_tail);
  autofree char *temp = xasprintf("%s/atomic-%d-%s.tmp", e->pin_tmp, (int)getpid(), hex);
  char *file = xasprintf("%s/%d-0.json", e->pin_dir, (int)getpid());
  if (!write_atomic(file, temp, text)) {
    free(file);
    return "cannot pin the layers";
  }
  h->pin = file;
  return NULL;
}

/* As instances.ts: slot claim temps (<slot>.<pid>-<hex>.tmp) and slot update temps
 * (<slot>.<pid>.<hex>.tmp) of castles killed at that instant are cleared first. */
static void remove_dead_temps(const char *slots) {
  DIR *dir = opendir(slots);
  if (dir == NULL) return;
  struct dirent *d;
  while ((d = readdir(dir)) != NULL) {
    size_t len = strlen(d->d_name);
    if (len < 5 || strcmp(d->d_name + len - 4, ".tmp") != 0) continue;
    /* ".<pid>[.-]<hex>.tmp" at the end */
    const char *end = d->d_name + len - 4, *hex = end;
    while (hex > d->d_name && strchr("0123456789abcdef", hex[-1]) != NULL) hex--;
    if (hex == end || hex == d->d_name || (hex[-1] != '.' && hex[-1] != '-')) continue;
    const char *pid_end = hex - 1, *pid_at = pid_end;
    while (pid_at > d->d_name && pid_at[-1] >= '0' && pid_at[-1] <= '9') pid_at--;
    if (pid_at == pid_end || pid_at == d->d_name || pid_at[-1] != '.') continue;
    unsigned long long start;
    if (process_start((pid_t)strtol(pid_at, NULL, 10), &start)) continue;
    autofree char *path = xasprintf("%s/%s", slots, d->d_name);
    (void)unlink(path);
  }
  closedir(dir);
}

const char *claim_slot(const struct entry *e, struct holds *h) {
  autofree char *slots = xstrdup(e->slot);
  char *slash = strrchr(slots, '/');
  if (slash == NULL) return "the entry's slot is not a path";
  *slash = '\0';
  remove_dead_temps(slots);
  char hex[9], id[400];
  unique_hex(hex);
  if (!json_escape(id, sizeof id, h->id)) return "the instance id is too long";
  autofree char *temp = xasprintf("%s.%d-%s.tmp", e->slot, (int)getpid(), hex);
  autofree char *text =
      xasprintf("{\"id\":\"%s\",\"pid\":%d,\"pidStart\":%llu}\n", id, (int)getpid(), own_start());
  autoclose int fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return "cannot claim the system's slot";
  bool written = write_all(fd, text, strlen(text));
  int err = written && link(temp, e->slot) == 0 ? 0 : errno;
  (void)unlink(temp);
  if (!written) return "cannot claim the system's slot";
  /* Taken: the system runs (or its castle died): the normal path says which, and clears it. */
  if (err == EEXIST) return "the system's slot is taken";
  if (err != 0) return "cannot claim the system's slot";
  h->slot = xstrdup(e->slot);
  return NULL;
}

/* Written atomically (temp + rename), as writeFileAtomic without fsync. */
static char *register_instance(const struct entry *e, const struct holds *h, pid_t pid,
                               long init_pid) {
  char escaped[400], started[64], hex[9];
  if (!json_escape(escaped, sizeof escaped, h->id)) die("the instance id is too long");
  iso_now(started);
  unsigned long long start = 0;
  (void)process_start(pid, &start);
  size_t fields_len;
  autofree char *fields =
      replace_all(e->instance_fields, strlen(e->instance_fields), INSTANCE_ID, h->id, &fields_len);
  autofree char *text = xasprintf(
      "{\"id\":\"%s\",\"pid\":%d,\"initPid\":%ld,\"startedAt\":\"%s\",\"pidStart\":%llu,%s}\n",
      escaped, (int)pid, init_pid, started, start, fields);
  char *file = xasprintf("%s/%s.json", e->instance_dir, h->id);
  unique_hex(hex);
  autofree char *temp = xasprintf("%s.%d.%s.tmp", file, (int)getpid(), hex);
  if (!write_atomic(file, temp, text)) die_errno("cannot register the instance %s", file);
  return file;
}

void holds_started(const struct entry *e, struct holds *h, pid_t helper, long init_pid) {
  if (h->slot != NULL) {
    /* The slot names the sandbox too: held until both castle and the sandbox are gone. */
    char id[400], hex[9];
    if (!json_escape(id, sizeof id, h->id)) die("the instance id is too long");
    unsigned long long helper_start = 0;
    (void)process_start(helper, &helper_start);
    autofree char *text = xasprintf(
        "{\"id\":\"%s\",\"pid\":%d,\"pidStart\":%llu,\"sandboxPid\":%d,\"sandboxStart\":%llu}\n",
        id, (int)getpid(), own_start(), (int)helper, helper_start);
    unique_hex(hex);
    autofree char *temp = xasprintf("%s.%d.%s.tmp", h->slot, (int)getpid(), hex);
    if (!write_atomic(h->slot, temp, text))
      die_errno("cannot update the system's slot %s", h->slot);
  }
  h->instance = register_instance(e, h, helper, init_pid);
}

struct instance_fields {
  char *id;
  long pid;
  unsigned long long pid_start;
  bool have_pid;
};

static void instance_field(void *ctx, const char *key, const char *value, bool is_string) {
  struct instance_fields *f = ctx;
  if (is_string && strcmp(key, "id") == 0) {
    free(f->id);
    f->id = xstrdup(value);
  } else if (!is_string && strcmp(key, "pid") == 0) {
    f->pid = strtol(value, NULL, 10);
    f->have_pid = f->pid > 0;
  } else if (!is_string && strcmp(key, "pidStart") == 0) {
    f->pid_start = strtoull(value, NULL, 10);
  }
}

/* As the registry's list() at the end of a run: entries of castles killed earlier go, and entries
 * they were writing when killed. */
static void forget_dead_instances(const char *dir_path) {
  DIR *dir = opendir(dir_path);
  if (dir == NULL) return;
  struct dirent *d;
  while ((d = readdir(dir)) != NULL) {
    size_t len = strlen(d->d_name);
    /* An entry being written (<id>.json.<pid>.<hex>.tmp) whose writer was killed meanwhile. */
    const char *writer = strstr(d->d_name, ".json.");
    unsigned long long start;
    if (writer != NULL && len > 4 && strcmp(d->d_name + len - 4, ".tmp") == 0) {
      char *end;
      long pid = strtol(writer + 6, &end, 10);
      if (pid > 0 && *end == '.' && !process_start((pid_t)pid, &start)) {
        autofree char *temp = xasprintf("%s/%s", dir_path, d->d_name);
        (void)unlink(temp);
      }
      continue;
    }
    if (len < 5 || strcmp(d->d_name + len - 5, ".json") != 0) continue;
    autofree char *path = xasprintf("%s/%s", dir_path, d->d_name);
    autofree char *text = read_file(path, 1u << 20, NULL);
    if (text == NULL) continue;
    struct instance_fields f = {0};
    if (json_object_fields(text, instance_field, &f) && f.id != NULL && f.have_pid) {
      if (!process_start((pid_t)f.pid, &start) || (f.pid_start != 0 && start != f.pid_start))
        (void)unlink(path);
    }
    free(f.id);
  }
  closedir(dir);
}

void holds_release(const struct entry *e, struct holds *h) {
  if (h->instance != NULL) (void)unlink(h->instance);
  forget_dead_instances(e->instance_dir);
  holds_abandon(h);
}

void holds_abandon(struct holds *h) {
  if (h->slot != NULL) (void)unlink(h->slot);
  if (h->pin != NULL) (void)unlink(h->pin);
  free(h->slot);
  free(h->pin);
  free(h->instance);
  h->slot = h->pin = h->instance = NULL;
}
