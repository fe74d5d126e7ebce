/* launcher.h: what the parts of the `castle` launcher share: the fast-path entry as typed ops
 * (entry.c reads it), the checks against the world and the replayed preparation (world.c), the
 * run of the sandbox helper (run.c), the little JSON reader for instance records and status
 * lines (json.c), and the fall-through to Node (util.c). Failures after the fast path took over
 * go through Castle's one error family (native/die.h): "castle: <what>", exit 1. */
#pragma once

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "die.h"    /* the error family of Castle's C programs: die, die_errno… (native/) */
#include "common.h" /* their shared helpers: x-allocation, write_all, parse_u64, json_escape */

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

/* Caps on what an entry may hold (Node writes far less). */
#define ENTRY_MAX_BYTES (16u << 20)
#define ENTRY_MAX_ITEMS 1000000u
#define ENTRY_MAX_SIGNALS 16

/* ---- the entry (entry.c) ---- */

/* A stat identity as Node reports it (numbers as doubles: Node's own precision). */
struct identity {
  bool absent;
  double dev, ino, mode, size, mtime_ms, ctime_ms;
};

struct file_check {
  const char *path;
  bool follow;
  struct identity id;
};

struct env_check {
  const char *name;
  const char *value; /* NULL: must be unset */
};

struct exists_check {
  const char *path;
  bool follow, exists;
};

/* Stands for the run's instance id in the spec and the instance fields (entry-format.ts). */
#define INSTANCE_ID "@@castle-instance-id@@"

struct error_text {
  int status, exit;
  const char *prefix, *suffix;
  bool with_message;
};

struct entry {
  /* key: the invocation answered */
  const char *dir, *arg;
  bool tty;
  size_t argc;
  const char **argv;
  struct identity node;
  struct env_check *env;
  size_t n_env;
  const char **prefixes;
  size_t n_prefixes;
  const char *cwd; /* NULL: any */
  struct file_check *files;
  size_t n_files;
  const char *generation_file;
  uint64_t generation;
  const char **trees;
  size_t n_trees;
  const char *root_file, *root_prefix, *root_suffix;
  const char *pin_dir, *pin_tmp, *pin_tail;
  const char *slot;
  const char *upper, *work, *nested;
  const char **mkdirs;
  size_t n_mkdirs;
  struct exists_check *exists;
  size_t n_exists;
  const char *helper;
  int forward[ENTRY_MAX_SIGNALS], ignore[ENTRY_MAX_SIGNALS];
  size_t n_forward, n_ignore;
  const char *instance_dir, *instance_system, *instance_fields;
  struct error_text errors[3];
  size_t n_errors;
  const char *spec;
  size_t spec_len;
};

/* Parses buf (NUL-terminated after len) into e, pointing into buf; false (with why) if damaged. */
bool entry_parse(char *buf, size_t len, struct entry *e, const char **why);
/* "SIGTERM" -> 15; 0 if unknown. */
int signal_number(const char *name);

/* ---- the world (world.c) ---- */

/* NULL when everything the entry recorded still holds, node (the fall-through's) included; else
 * why not (a static or allocated string). */
const char *world_check(const struct entry *e, const char *node);
/* ---- the run's holds (claim.c) ---- */

/* What a run holds while it runs, as the normal path does: its pin on the layers (pins/), its
 * system's slot, its instance record; each NULL until taken. */
struct holds {
  char id[160];
  char *pin, *slot, *instance;
};

/* A fresh instance id (<system>-<6 hex>). */
void holds_init(const struct entry *e, struct holds *h);
/* NULL when taken; else why not (nothing is left behind). */
const char *hold_pin(const struct entry *e, struct holds *h);
const char *claim_slot(const struct entry *e, struct holds *h);
/* The command runs: the slot names the sandbox too, the instance is registered. */
void holds_started(const struct entry *e, struct holds *h, pid_t helper, long init_pid);
/* The run ended: instance, stale instances of killed castles, slot, pin — in the normal order. */
void holds_release(const struct entry *e, struct holds *h);
/* Before handing the command to the normal path: drops what was taken (it takes its own). */
void holds_abandon(struct holds *h);

/* Replays what the normal run does before it starts the sandbox: pin the layers, touch the root,
 * check no prune started, claim the system's slot, make the state dirs (the work dir emptied).
 * NULL when done, else why not (with nothing held). */
const char *world_prepare(const struct entry *e, struct holds *h);
bool identity_of(const char *path, bool follow, struct identity *out);

/* ---- the run (run.c) ---- */

/* Starts the helper on the entry's spec, takes the holds of a started run, passes signals on;
 * returns the exit status the normal path would (printing its error text when the helper reports
 * one), once the holds are released. */
int run_sandbox(const struct entry *e, struct holds *h);

/* ---- JSON (json.c) ---- */

/* Calls field() for each member of the top-level object in text (string values unescaped,
 * numbers and other values as their raw text); false if text is not an object. */
typedef void (*json_field_fn)(void *ctx, const char *key, const char *value, bool is_string);
bool json_object_fields(const char *text, json_field_fn field, void *ctx);

/* ---- the fall-through and helpers (util.c) ---- */

/* Where the fall-through goes: node and the bundle's castle.cjs. */
void fallthrough_init(char **argv, const char *node, const char *script, bool debug);
/* The normal path takes over (exec node on the bundle) because of `why`. Only before anything
 * was changed that the normal path would not change the same way. */
NORETURN void miss(const char *fmt, ...) PRINTF(1, 2);
/* Prints "castle: fast path: <what>" when CASTLE_FASTPATH_DEBUG is set. */
void debug_note(const char *fmt, ...) PRINTF(1, 2);

/* Field 22 of /proc/<pid>/stat (start time in clock ticks); false when gone or a zombie. */
bool process_start(pid_t pid, unsigned long long *start);
/* Writes text to path by way of temp (same filesystem) and rename(2); false with errno set. */
bool write_atomic(const char *path, const char *temp, const char *text);
/* Eight hex digits for a unique name. */
void unique_hex(char out[9]);
/* new Date().toISOString(), UTC: 2026-12-07T10:11:12.345Z. */
void iso_now(char out[64]);
/* Reads a whole file (NUL-terminated) up to max bytes; NULL with errno set on failure. */
char *read_file(const char *path, size_t max, size_t *len);
/* text (len bytes, NULs allowed) with every `from` replaced by `to`; the result's length in
 * *out_len. */
char *replace_all(const char *text, size_t len, const char *from, const char *to, size_t *out_len);
