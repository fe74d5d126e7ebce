/* enter.c: enter mode (spec op `enter <pid>`): run a command inside a running sandbox, like
 * `docker exec`. Two halves:
 *
 *   - Every sandbox's init opens its own namespace files and hands them to the monitor over the
 *     report channel (enter_publish_namespaces, SCM_RIGHTS), ahead of its "started" report;
 *     the monitor holds them while init lives. Init is not dumpable, so the caller cannot open
 *     /proc/<init>/ns/... nor setns() through a pidfd of init: the kernel ties both to ptrace
 *     access, and init must refuse ptrace so code inside never reaches its fds (the caller's
 *     stdio). Sending costs init a few opens and never makes it wait for the monitor.
 *   - enter_main finds the target's monitor (init's parent), reopens those files through
 *     /proc/<monitor>/fd/N (allowed: same uid, and the monitor is dumpable), checks they are
 *     the namespaces of a castle sandbox the caller owns, and runs the usual pair: this process
 *     stays in the caller's namespaces as the monitor (monitor.c), and a forked "joiner" enters
 *     user, mnt, pid, uts, ipc, net and cgroup, then runs init_run, which forks the command into
 *     the target's pid namespace with the same hardening as a normal command (command.c).
 *
 * Process layout: monitor (caller's namespaces) -> joiner (the target's namespaces, but a host
 * pid: setns(pid) only moves its children) -> command (in the target's pid namespace, so it
 * shows in the sandbox's ps, and the kernel kills it with the rest of that namespace when the
 * sandbox's init exits; it also dies with the joiner). */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "kabi.h"
#include "sandbox.h"

/* Stable words in the error status line (TypeScript: SandboxEnterError's data.reason). */
#define GONE "no-such-process"
#define NOT_SANDBOX "not-a-sandbox"
#define DENIED "permission-denied"

/* A sandbox's namespaces in the order enter joins them: user first (joining it grants the
 * capabilities the others ask for), then mnt (which also sets our root and cwd to the sandbox's
 * root), pid (for our children), uts, ipc, net (absent for "net host": the caller's own), cgroup. */
static const struct {
  const char *name;
  int flag;
} kinds[NS_KINDS] = {
    {"user", CLONE_NEWUSER}, {"mnt", CLONE_NEWNS}, {"pid", CLONE_NEWPID},
    {"uts", CLONE_NEWUTS},   {"ipc", CLONE_NEWIPC}, {"net", CLONE_NEWNET},
    {"cgroup", CLONE_NEWCGROUP},
};
enum { NS_USER = 0, NS_PID = 2, NS_NET = 5 };

void enter_publish_namespaces(int report_fd, bool own_net) {
  int fds[NS_KINDS];
  size_t n = 0;
  struct report r = {.type = REPORT_NAMESPACES};
  for (size_t k = 0; k < NS_KINDS; k++) {
    if (k == NS_NET && !own_net) continue;
    char path[32];
    snprintf(path, sizeof path, "/proc/self/ns/%s", kinds[k].name);
    fds[n] = open(path, O_RDONLY | O_CLOEXEC);
    if (fds[n] < 0) die_errno("open %s for enter", path);
    n++;
    r.code |= 1 << k;
  }
  char control[CMSG_SPACE(sizeof fds)];
  memset(control, 0, sizeof control);
  struct iovec iov = {&r, sizeof r};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                       .msg_controllen = CMSG_SPACE(n * sizeof(int))};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(n * sizeof(int));
  memcpy(CMSG_DATA(c), fds, n * sizeof(int));
  /* The monitor gone (EPIPE): PDEATHSIG ends us in a moment, and nobody is left to enter us. */
  if (sendmsg(report_fd, &msg, MSG_NOSIGNAL) < 0 && errno != EPIPE && errno != ECONNRESET)
    die_errno("send the namespaces to the monitor");
  for (size_t i = 0; i < n; i++) close(fds[i]);
}

/* ---- finding and checking the target ---- */

struct proc_info {
  char state;
  pid_t ppid;
  unsigned long uids[4];   /* real, effective, saved, fs */
  size_t nspid_count;      /* how many pid namespaces it has a pid in, ours first */
  long nspid_last;         /* its pid in the innermost one */
  char comm[32];
};

/* Reads /proc/<pid>/<file>; false when the process does not exist (any more). */
static bool read_proc(pid_t pid, const char *file, char *buf, size_t size) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
  autoclose int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 && (errno == ENOENT || errno == ESRCH)) return false;
  if (fd < 0) die_errno("open %s", path);
  size_t used = 0;
  for (;;) {
    ssize_t n = read(fd, buf + used, size - 1 - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == ESRCH) return false;
    if (n < 0) die_errno("read %s", path);
    used += (size_t)n;
    if (n == 0 || used == size - 1) break;
  }
  buf[used] = '\0';
  return true;
}

/* The text after "key:" on its line of a /proc status file, or NULL. */
static const char *status_field(const char *status, const char *key) {
  size_t klen = strlen(key);
  for (const char *line = status; *line != '\0';) {
    if (strncmp(line, key, klen) == 0 && line[klen] == ':') return line + klen + 1;
    const char *end = strchrnul(line, '\n');
    line = *end == '\0' ? end : end + 1;
  }
  return NULL;
}

static bool proc_info(pid_t pid, struct proc_info *info) {
  char status[4096];
  *info = (struct proc_info){.nspid_last = -1};
  if (!read_proc(pid, "status", status, sizeof status)) return false;
  const char *state = status_field(status, "State");
  const char *ppid = status_field(status, "PPid");
  const char *uid = status_field(status, "Uid");
  const char *nspid = status_field(status, "NSpid");
  const char *name = status_field(status, "Name");
  if (state == NULL || ppid == NULL || uid == NULL || name == NULL)
    die("enter %d: /proc/%d/status lacks State, PPid, Uid or Name", (int)pid, (int)pid);
  while (*state == '\t' || *state == ' ') state++;
  info->state = *state;
  info->ppid = (pid_t)strtol(ppid, NULL, 10);
  char *end = (char *)uid;
  for (size_t i = 0; i < 4; i++) info->uids[i] = strtoul(end, &end, 10);
  for (end = (char *)nspid; nspid != NULL && *end != '\n' && *end != '\0';) {
    while (*end == '\t' || *end == ' ') end++;
    if (*end < '0' || *end > '9') break;
    info->nspid_last = strtol(end, &end, 10);
    info->nspid_count++;
  }
  while (*name == '\t' || *name == ' ') name++;
  snprintf(info->comm, sizeof info->comm, "%.*s", (int)strcspn(name, "\n"), name);
  return true;
}

static bool is_helper(const struct proc_info *info) {
  return strncmp(info->comm, "castle-sandbox", 14) == 0;
}

/* A sandbox's init names itself "castle-init" once it runs (main.c's name_init); before that
 * it is still "castle-sandbox". */
static bool is_init(const struct proc_info *info) {
  return is_helper(info) || strcmp(info->comm, "castle-init") == 0;
}

struct target {
  pid_t init, monitor;
  int ns[NS_KINDS]; /* -1: not held (net of a "net host" sandbox) */
};

/* Reopens the namespace files the target's monitor holds (see enter_publish_namespaces). */
static void open_held(struct target *t) {
  char dir[64];
  snprintf(dir, sizeof dir, "/proc/%d/fd", (int)t->monitor);
  DIR *d = opendir(dir);
  if (d == NULL && (errno == EACCES || errno == EPERM))
    die_reason(DENIED, errno, "enter %d: read the fds of its monitor (pid %d)", (int)t->init,
               (int)t->monitor);
  if (d == NULL && errno == ENOENT)
    die_reason(GONE, 0, "enter %d: the sandbox has exited", (int)t->init);
  if (d == NULL) die_errno("open %s", dir);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char path[320], link[64];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n < 0 && errno == ENOENT) continue; /* closed meanwhile */
    if (n < 0) die_reason(errno == EACCES ? DENIED : NULL, errno, "enter %d: readlink %s",
                          (int)t->init, path);
    link[n] = '\0';
    for (size_t k = 0; k < NS_KINDS; k++) {
      size_t len = strlen(kinds[k].name);
      if (strncmp(link, kinds[k].name, len) != 0 || strncmp(link + len, ":[", 2) != 0) continue;
      if (t->ns[k] >= 0)
        die_reason(NOT_SANDBOX, 0, "enter %d: not a sandbox: its parent holds two %s namespaces",
                   (int)t->init, kinds[k].name);
      t->ns[k] = open(path, O_RDONLY | O_CLOEXEC);
      if (t->ns[k] < 0 && errno == ENOENT)
        die_reason(GONE, 0, "enter %d: the sandbox has exited", (int)t->init);
      if (t->ns[k] < 0)
        die_reason(errno == EACCES ? DENIED : NULL, errno, "enter %d: open %s (%s)",
                   (int)t->init, path, link);
    }
  }
  closedir(d);
  for (size_t k = 0; k < NS_KINDS; k++)
    if (t->ns[k] < 0 && k != NS_NET)
      die_reason(NOT_SANDBOX, 0,
                 "enter %d: not a sandbox: its parent (pid %d) holds no %s namespace (a "
                 "castle-sandbox without enter support?)",
                 (int)t->init, (int)t->monitor, kinds[k].name);
}

static bool same_file(int fd, const struct stat *st) {
  struct stat other;
  return fd >= 0 && fstat(fd, &other) == 0 && other.st_ino == st->st_ino &&
         other.st_dev == st->st_dev;
}

/* The held namespaces must be a sandbox's: a user namespace owned by us and a child of ours,
 * every other one owned by it, and (kernels >= 6.9) pid 1 of the pid namespace is the target. */
static void check_namespaces(const struct target *t) {
  uid_t owner;
  if (ioctl(t->ns[NS_USER], CASTLE_NS_GET_OWNER_UID, &owner) < 0)
    die_errno("enter %d: owner of its user namespace", (int)t->init);
  if (owner != geteuid())
    die_reason(DENIED, 0, "enter %d: permission denied: its user namespace belongs to uid %u",
               (int)t->init, (unsigned)owner);
  struct stat ours, user;
  if (stat("/proc/self/ns/user", &ours) < 0) die_errno("stat /proc/self/ns/user");
  if (fstat(t->ns[NS_USER], &user) < 0) die_errno("stat its user namespace");
  autoclose int parent = ioctl(t->ns[NS_USER], CASTLE_NS_GET_PARENT);
  if (!same_file(parent, &ours))
    die_reason(NOT_SANDBOX, 0, "enter %d: not a sandbox: its user namespace is not a child of ours",
               (int)t->init);
  for (size_t k = 1; k < NS_KINDS; k++) {
    if (t->ns[k] < 0) continue;
    autoclose int owning = ioctl(t->ns[k], CASTLE_NS_GET_USERNS);
    if (!same_file(owning, &user))
      die_reason(NOT_SANDBOX, 0, "enter %d: not a sandbox: its %s namespace is not its own",
                 (int)t->init, kinds[k].name);
  }
  int host = ioctl(t->ns[NS_PID], CASTLE_NS_GET_PID_FROM_PIDNS, 1);
  if (host < 0 && errno == ESRCH)
    die_reason(GONE, 0, "enter %d: the sandbox has exited", (int)t->init);
  if (host >= 0 && host != t->init)
    die_reason(NOT_SANDBOX, 0, "enter %d: not a sandbox: its parent holds the namespaces of pid %d",
               (int)t->init, host);
}

static void find_target(pid_t pid, struct target *t) {
  *t = (struct target){.init = pid};
  for (size_t k = 0; k < NS_KINDS; k++) t->ns[k] = -1;
  struct proc_info init, monitor;
  if (!proc_info(pid, &init) || init.state == 'Z' || init.state == 'X')
    die_reason(GONE, 0, "enter %d: no such process", (int)pid);
  if (init.nspid_count < 2 || init.nspid_last != 1)
    die_reason(NOT_SANDBOX, 0, "enter %d: not a sandbox: \"%s\" is not the init of a pid namespace "
               "below ours", (int)pid, init.comm);
  if (!is_init(&init))
    die_reason(NOT_SANDBOX, 0, "enter %d: not a sandbox: it runs \"%s\", not castle-sandbox",
               (int)pid, init.comm);
  /* A root caller's sandbox runs as SHIFT_ID (shift.c). */
  for (size_t i = 0; i < 4; i++)
    if (init.uids[i] != (unsigned long)geteuid() && !(geteuid() == 0 && init.uids[i] == SHIFT_ID))
      die_reason(DENIED, 0, "enter %d: permission denied: the sandbox runs as uid %lu, not %u",
                 (int)pid, init.uids[i], (unsigned)geteuid());
  t->monitor = init.ppid;
  if (!proc_info(t->monitor, &monitor) || !is_helper(&monitor))
    die_reason(NOT_SANDBOX, 0, "enter %d: not a sandbox: its parent (pid %d) is not castle-sandbox",
               (int)pid, (int)t->monitor);
  open_held(t);
  check_namespaces(t);
}

/* The ids the target maps, read from inside it: 0 only, or 0 plus a subordinate range; and
 * which host id is root inside. */
static unsigned long highest_id(const char *path, unsigned long *root_outside) {
  FILE *f = fopen(path, "re");
  if (f == NULL) die_errno("open %s", path);
  unsigned long inside, outside, count, highest = 0;
  while (fscanf(f, "%lu %lu %lu", &inside, &outside, &count) == 3) {
    if (count > 0 && inside + count - 1 > highest) highest = inside + count - 1;
    if (inside == 0 && count > 0) *root_outside = outside;
  }
  fclose(f);
  return highest;
}

static void target_idmap(struct idmap *map, uid_t uid, gid_t gid) {
  *map = (struct idmap){.outer_uid = uid, .outer_gid = gid};
  unsigned long root_uid = map->outer_uid, root_gid = map->outer_gid;
  map->uid_count = highest_id("/proc/self/uid_map", &root_uid);
  map->gid_count = highest_id("/proc/self/gid_map", &root_gid);
  map->range = map->uid_count > 0 || map->gid_count > 0;
  map->shifted = map->outer_uid == 0 && root_uid == SHIFT_ID && root_gid == SHIFT_ID;
}

static void join(struct target *t, size_t k) {
  if (t->ns[k] < 0) return;
  if (setns(t->ns[k], kinds[k].flag) < 0)
    die_reason(k == NS_USER && errno == EPERM ? DENIED : NULL, errno,
               "enter %d: join its %s namespace", (int)t->init, kinds[k].name);
  close(t->ns[k]);
  t->ns[k] = -1;
}

/* ---- the sequence ---- */

int enter_main(struct spec *spec, int status_fd, int sync_fd) {
  pid_t target_pid = spec->enter_pid;

  /* 1. The target: a castle sandbox's init that we own, and its namespaces, reopened from what
   * its monitor holds. Everything is checked before anything is joined. */
  struct target t;
  find_target(target_pid, &t);

  /* 2. Signals and the terminal as for a new sandbox (main.c): forwarded signals are blocked
   * before fork so none is lost; the joiner reads them from a signalfd in init_run. */
  sigset_t set;
  forward_signals(&set);
  sigaddset(&set, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) die_errno("sigprocmask");
  if (spec->tty) tty_raw_caller();
  int report[2], life[2];
  report_channel(report);
  if (pipe2(life, O_CLOEXEC) < 0) die_errno("pipe");

  /* 3. Fork the joiner; this process stays outside as the monitor. */
  pid_t pid = fork();
  if (pid < 0) die_errno("fork");
  if (pid > 0) {
    close(report[1]);
    close(life[0]);
    for (size_t k = 0; k < NS_KINDS; k++)
      if (t.ns[k] >= 0) close(t.ns[k]);
    signal(SIGPIPE, SIG_IGN);
    struct monitor m = {.init = pid, .shown_init = target_pid, .entering = true,
                        .report_fd = report[0], .status_fd = status_fd, .sync_fd = sync_fd};
    for (size_t k = 0; k < NS_KINDS; k++) m.ns_fds[k] = -1;
    int code = monitor_run(&m, spec);
    return m.caller_gone ? 128 + SIGKILL : code;
  }

  /* Joiner. Dies with the monitor, checked against the life pipe as init does. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) die_errno("PR_SET_PDEATHSIG");
  close(report[0]);
  close(life[1]);
  die_sink_report(report[1]);
  int keep[2 + NS_KINDS] = {report[1], life[0]};
  size_t nkeep = 2;
  for (size_t k = 0; k < NS_KINDS; k++)
    if (t.ns[k] >= 0) keep[nkeep++] = t.ns[k];
  close_fds_except(keep, nkeep);
  struct pollfd alive = {life[0], POLLIN, 0};
  if (poll(&alive, 1, 0) > 0 && (alive.revents & POLLHUP)) _exit(EXIT_SETUP);

  /* 4. The instance's cgroups (when the caller names them), while the host's tree is in view. */
  cgroups_join(spec, getpid(), "pass the cgroup dirs the sandbox was started with");

  /* 5. Join the user namespace first: it grants the capabilities the other joins ask for.
   * (Our ids as the host sees them are read before: inside, an unmapped id reads as 65534.) */
  uid_t host_uid = geteuid();
  gid_t host_gid = getegid();
  join(&t, NS_USER);

  /* 6. The ids it maps decide which uid/gid the command may have. Read from the host's /proc
   * now: after mnt, /proc is the sandbox's, where this process has no pid. */
  struct idmap map;
  target_idmap(&map, host_uid, host_gid);
  idmap_check(&map, spec->uid, spec->gid);
  if (map.shifted) {
    /* A root caller's sandbox: host root is nobody inside; take its root's ids (SHIFT_ID), as
     * its init did, and arm the parent-death signal again (the change cleared it). */
    idmap_become_root();
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) die_errno("PR_SET_PDEATHSIG");
    if (poll(&alive, 1, 0) > 0 && (alive.revents & POLLHUP)) _exit(EXIT_SETUP);
  }
  close(life[0]);

  /* Then the rest; after mnt our root and cwd are the sandbox's root. */
  for (size_t k = 1; k < NS_KINDS; k++) join(&t, k);
  if (chdir("/") < 0) die_errno("chdir / in the sandbox");
  /* Not dumpable, like init: nothing inside may ptrace us or open our fds (the caller's stdio). */
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) die_errno("PR_SET_DUMPABLE");

  /* 7. Fork the command into the sandbox's pid namespace (setsid, tty from the sandbox's own
   * /dev/pts, rlimits, keyring, capabilities, ids, cwd, fds, no_new_privs, seccomp, exec),
   * forward signals, relay the tty and report its exit to the monitor. */
  struct mount_plan plan = {.used = DRIVER_KERNEL};
  init_run(spec, &map, &plan, report[1]);
}
