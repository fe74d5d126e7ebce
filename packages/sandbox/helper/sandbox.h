/* sandbox.h: the parsed spec (typed ops, see spec.c for the wire format) and the entry points
 * of each setup stage, in the order main() calls them. */
#pragma once

#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

/* Caps on what can grow (the TypeScript side enforces the same numbers). */
#define MAX_SPEC_BYTES (1024 * 1024)
#define MAX_LOWERS 500
#define MAX_ENV 4096
#define MAX_ARGV 4096
#define MAX_MOUNTS 1024
#define MAX_RLIMITS 16
#define MAX_CGROUPS 8    /* one dir per cgroup v1 hierarchy (pids, memory, cpu...) or one v2 dir */
#define MAX_HOST_VIEWS \
  64 /* distinct host dirs a root caller's sandbox sees through idmapped mounts */

/* The host uid and gid a root caller's sandbox runs its root as (0x7CA50000): in the range
 * systemd documents as unused (1879048192..2147483647), outside the container ranges that
 * systemd-nspawn and podman allocate from and below the 2^31 ids some tools mishandle. */
#define SHIFT_ID 2091188224U

enum overlay_driver { DRIVER_AUTO = 0, DRIVER_KERNEL, DRIVER_FUSE };

/* A filesystem composed by overlayfs; lowers bottom first, as in the spec. */
struct overlay {
  const char **lowers;
  size_t nlowers;
  const char *upper; /* NULL: read-only */
  const char *work;
  bool volatile_;    /* skip the sync of the upper's filesystem at unmount */
};

enum mount_kind { MOUNT_BIND = 1, MOUNT_OVERLAY, MOUNT_TMPFS };

struct mount_op {
  enum mount_kind kind;
  const char *target;    /* absolute path inside the sandbox */
  const char *source;    /* MOUNT_BIND: host path */
  bool readonly;         /* MOUNT_BIND */
  bool source_is_dir;    /* MOUNT_BIND, set when the source is resolved */
  struct overlay overlay; /* MOUNT_OVERLAY */
  uint64_t size;         /* MOUNT_TMPFS: bytes, 0 = kernel default */
  unsigned mode;         /* MOUNT_TMPFS */
};

struct rlimit_op {
  int resource;
  const char *name;
  uint64_t soft, hard; /* UINT64_MAX = unlimited */
};

struct spec {
  char *buf; /* owns every string below */
  const char **argv; /* NULL-terminated */
  size_t argc;
  const char **env; /* NULL-terminated */
  size_t nenv;
  struct overlay root;
  struct mount_op *mounts;
  size_t nmounts;
  const char *cwd;
  const char *hostname;
  uint32_t uid, gid;
  bool net_host;
  bool tty;
  enum overlay_driver driver;
  struct rlimit_op rlimits[MAX_RLIMITS];
  size_t nrlimits;
  uint64_t keep_caps; /* bit n = keep capability n in the bounding set */
  const char *cgroups[MAX_CGROUPS]; /* host cgroup dirs init (or, entering, the command) joins */
  size_t ncgroups;
  uint64_t tmp_size; /* bytes for the sandbox's /tmp; 0 = the kernel's default (half of RAM) */
  pid_t enter_pid;    /* enter mode: host pid of the running sandbox's init; 0 = build one */
};

/* spec.c */
void spec_parse(char *buf, size_t len, struct spec *out);

/* userns.c: single-id map written by the child itself, a full subordinate range written by
 * newuidmap/newgidmap from the monitor, or (a root caller) root inside as SHIFT_ID, written by
 * the monitor. */
struct idmap {
  bool range;
  bool shifted; /* root inside is host SHIFT_ID, not the caller (host root); see shift.c */
  bool host_root; /* the caller is host root: the kernel's plain uid 0 checks pass for it */
  uid_t outer_uid;
  gid_t outer_gid;
  unsigned long uid_start, uid_count, gid_start, gid_count;
  const char *newuidmap, *newgidmap;
  char user[64];
};
const char *userns_hint(int err);
void idmap_plan(struct idmap *map);
void idmap_check(const struct idmap *map, uint32_t uid, uint32_t gid);
void idmap_write_self(const struct idmap *map);
void idmap_write_for(const struct idmap *map, pid_t child);
/* Writes "0 SHIFT_ID 1" as child's uid and gid maps (host root writing them, see shift.c). */
void write_shifted_maps(pid_t child);
/* After the maps are written: a process still holding host root's ids takes root's inside. */
void idmap_become_root(void);

/* shift.c: a root caller's sandbox sees the host dirs it mounts through idmapped mounts, which
 * show host root's files as its own root's. */
struct host_view {
  const char *host_dir; /* a resolved host dir (the parent of some spec paths) */
  char *view;           /* where init attached it, on the base tmpfs */
  int fd;               /* the detached idmapped mount until it is attached; -1 after */
  uint64_t mnt_id;      /* the host mount it is on */
};
struct host_views {
  struct host_view dirs[MAX_HOST_VIEWS];
  size_t n;
  pid_t holder; /* the exited child whose user namespace lent the views their map; 0 = none */
};
/* Whether this root caller's sandbox can run as SHIFT_ID; why not in `why` (then root inside is
 * host root, as for bubblewrap). Dies if SHIFT_ID belongs to a user of this machine. */
bool shift_possible(char *why, size_t size);
/* Whether this root caller is host root: root of the initial user namespace, or one whose
 * writes a host sysctl takes. Root of a sandbox (a rootless caller's, or a root caller's
 * shifted one) is some other host id, at every level of a nest. */
bool root_is_host_root(void);
/* Opens idmapped views of every host dir the spec's paths live in; false (and why) when the
 * kernel or a filesystem refuses them. */
bool host_views_open(const struct spec *spec, struct host_views *views, char *why, size_t size);
/* Reaps the child that held the views' user namespace (the monitor does, once init goes on). */
void host_views_reap(struct host_views *views);
/* In init, on the base tmpfs: attaches the views and points the spec's host paths into them. */
void host_views_attach(struct spec *spec, struct host_views *views, const char *base);
/* Once the host-sourced mounts stand and the base stays (fuse): the views themselves go. */
void host_views_detach(const struct host_views *views);
/* mount.c: host sources are mounted before the first pivot, the sandbox side after it. */
struct mount_plan {
  const char *base;          /* host dir the base tmpfs covers until the pivot */
  enum overlay_driver used;  /* DRIVER_KERNEL or DRIVER_FUSE */
  bool root_writable;       /* mount targets can be created in the root */
  bool root_readonly_later; /* a scaffold upper holds the targets; make / read-only after */
  bool spawned_helpers;      /* fuse-overlayfs ran inside the pid namespace */
  bool mask_proc;            /* root inside is host root: cover /proc/sys and friends */
};
void mounts_resolve_host_paths(struct spec *spec);
void mounts_stage_host_sources(struct spec *spec, struct host_views *views,
                               struct mount_plan *plan);
void mounts_pivot_to_base(const struct mount_plan *plan);
void mounts_assemble_root(const struct spec *spec, const struct mount_plan *plan);
void mounts_enter_root(const struct mount_plan *plan);

/* overlay.c */
int overlay_mount_kernel(const struct overlay *ov, const char *target, const char *linkdir,
                         char *msg, size_t size);
void overlay_mount_fuse(const struct overlay *ov, const char *target);
bool fuse_available(const char **why);
void fuse_normalize_upper(const char *upper);
void overlay_clear_volatile(const char *work);

/* monitor.c: the helper's own process, outside the sandbox (see main.c and enter.c). */
#define NS_KINDS 7
struct monitor {
  pid_t init;        /* the child it waits for: init, or the joiner in enter mode */
  pid_t shown_init;  /* "initPid" in the started line: init, or the entered sandbox's init */
  bool entering;     /* enter mode: report the command's host pid instead of the overlay */
  int report_fd, status_fd, sync_fd;
  int ns_fds[NS_KINDS]; /* init's namespaces, held for `enter` until init is gone; -1 = none */
  /* (received from init over the report channel; set every entry to -1 before monitor_run) */
  bool have_error, have_exit, started, caller_gone;
  struct report error, exit;
  char overlay[8];
};
int monitor_run(struct monitor *m, const struct spec *spec);
/* Moves pid into each cgroup dir (v2, or one per v1 hierarchy); dies naming the one refused. */
void cgroups_join(const struct spec *spec, pid_t pid, const char *hint);

/* enter.c: a new sandbox's init hands its namespaces to the monitor; enter_main joins them. */
void enter_publish_namespaces(int report_fd, bool own_net);
int enter_main(struct spec *spec, int status_fd, int sync_fd);
/* The report channel between the monitor and init (or the joiner): a SOCK_SEQPACKET pair. */
void report_channel(int fds[2]);

/* init.c: pid 1 inside; forks the command, forwards signals, reaps, relays the tty. */
void forward_signals(sigset_t *set);
NORETURN void init_run(const struct spec *spec, const struct idmap *map,
                       const struct mount_plan *plan, int report_fd);

/* command.c: the command's last steps (drop privileges, seccomp, exec). */
NORETURN void command_exec(const struct spec *spec, const struct idmap *map, int tty_master,
                           int exec_fd);

/* caps.c */
int cap_from_name(const char *name);
uint64_t caps_default_keep(void);
void caps_drop_bounding(uint64_t keep);
void caps_set_process(uint64_t set);

/* seccomp.c */
void seccomp_install(void);

/* tty.c */
void tty_raw_caller(void);
void tty_restore_caller(void);
int tty_open_master(void);
void tty_copy_winsize(int master);
int tty_open_slave(int master);
void tty_make_controlling(int master);
struct tty_relay;
struct tty_relay *tty_relay_new(int master);
int tty_relay_poll_fds(struct tty_relay *relay, struct pollfd *fds, int max);
void tty_relay_handle(struct tty_relay *relay, struct pollfd *fds, int n);
void tty_relay_drain(struct tty_relay *relay);

/* probe.c */
int probe_main(void);
