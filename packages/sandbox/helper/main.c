/* main.c: castle-sandbox's entry point. main() is the setup sequence in order; the monitor
 * (this process, outside every namespace, monitor.c) then waits for init, forwards signals,
 * watches the caller through the sync fd and writes the JSON status lines. A spec with
 * `enter <pid>` runs a command in an existing sandbox instead (enter.c).
 *
 *   castle-sandbox --spec-fd N [--status-fd N] [--sync-fd N]   run the spec read from fd N
 *   castle-sandbox --probe                                      print what this machine supports
 *   castle-sandbox --version | --help
 *
 * Process layout: monitor (caller's namespaces) -> init (pid 1 inside) -> command (pid 2). */
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "sandbox.h"

struct options {
  int spec_fd, status_fd, sync_fd;
};

static const char usage[] =
    "usage: castle-sandbox --spec-fd N [--status-fd N] [--sync-fd N]\n"
    "       castle-sandbox --probe | --version | --help\n"
    "Runs a command in a rootless sandbox described by the spec read from --spec-fd\n"
    "(format: see spec.c). Status JSON lines go to --status-fd; when --sync-fd reaches EOF\n"
    "the sandbox is killed. Exit: the command's status, 128+signal, or 125 (setup failed),\n"
    "126 (not executable), 127 (not found).\n";

static int parse_fd(const char *flag, const char *value) {
  uint64_t fd;
  if (value == NULL || !parse_u64(value, 1u << 20, &fd)) die("%s needs a file descriptor number", flag);
  if (fcntl((int)fd, F_GETFD) < 0) die_errno("%s %d", flag, (int)fd);
  return (int)fd;
}

static struct options parse_options(int argc, char **argv) {
  struct options opt = {-1, -1, -1};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--version") == 0) {
      printf("castle-sandbox %s (spec castle-sandbox-spec/1)\n", CASTLE_VERSION);
      exit(0);
    } else if (strcmp(a, "--help") == 0) {
      fputs(usage, stdout);
      exit(0);
    } else if (strcmp(a, "--probe") == 0) {
      exit(probe_main());
    } else if (strcmp(a, "--spec-fd") == 0) {
      opt.spec_fd = parse_fd(a, i + 1 < argc ? argv[++i] : NULL);
    } else if (strcmp(a, "--status-fd") == 0) {
      opt.status_fd = parse_fd(a, i + 1 < argc ? argv[++i] : NULL);
    } else if (strcmp(a, "--sync-fd") == 0) {
      opt.sync_fd = parse_fd(a, i + 1 < argc ? argv[++i] : NULL);
    } else {
      die("unknown argument \"%.64s\" (see --help)", a);
    }
  }
  if (opt.spec_fd < 0) die("--spec-fd is required (see --help)");
  return opt;
}

static void loopback_up(void) {
  autoclose int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) die_errno("socket for lo");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) die_errno("get lo flags");
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) die_errno("bring lo up");
}

/* Inside, init shows as "castle-init": ps reads /proc/1/cmdline, where the helper's host path
 * and its protocol fds mean nothing (and say where Castle lives on the host). The argument
 * strings are one block of memory: overwrite it, and name the thread too (ps -o comm). */
static void name_init(int argc, char **argv) {
  static const char name[] = "castle-init";
  char *start = argv[0];
  char *end = argv[argc - 1] + strlen(argv[argc - 1]);
  size_t room = (size_t)(end - start);
  memset(start, 0, room);
  memcpy(start, name, room < sizeof name - 1 ? room : sizeof name - 1);
  if (prctl(PR_SET_NAME, name, 0, 0, 0) < 0) die_errno("PR_SET_NAME");
}

int main(int argc, char **argv) {
  /* Every failure from here on is one "castle-sandbox: ..." line and exit 125. */
  die_program("castle-sandbox", EXIT_SETUP);
  struct options opt = parse_options(argc, argv);
  die_sink_status(opt.status_fd);
  /* The protocol fds must never reach the command. */
  set_cloexec(opt.spec_fd);
  if (opt.status_fd >= 0) set_cloexec(opt.status_fd);
  if (opt.sync_fd >= 0) set_cloexec(opt.sync_fd);

  /* 1. Read the spec: the whole sandbox is described by this one buffer. */
  size_t len;
  char *buf = read_fd_all(opt.spec_fd, MAX_SPEC_BYTES, &len, "spec");
  close(opt.spec_fd);
  struct spec spec;
  spec_parse(buf, len, &spec);

  /* Without a terminal of its own, the sandbox leaves the caller's process group, so a
   * terminal's Ctrl-C reaches only the caller, which decides what to pass on (as `docker run`
   * does): the command gets each signal once. (With a tty, keys travel through its pty.) */
  if (!spec.tty && setpgid(0, 0) < 0 && errno != EPERM) die_errno("setpgid");

  /* Enter mode: the sandbox exists; join it instead of building one (its own sequence). */
  if (spec.enter_pid != 0) return enter_main(&spec, opt.status_fd, opt.sync_fd);

  /* 2. Validate against this machine: host paths as the caller sees them, which uid map we can
   * get and whether the ids fit it. A root caller's sandbox runs its root as SHIFT_ID and sees
   * host dirs through idmapped views, which only host root can open: now, before the clone. */
  mounts_resolve_host_paths(&spec);
  struct idmap map;
  idmap_plan(&map);
  struct host_views views = {.n = 0, .holder = 0};
  char why[300];
  if (map.shifted && !host_views_open(&spec, &views, why, sizeof why)) {
    warn("warning: the sandbox's root is host root: %s", why);
    map.shifted = false;
  }
  idmap_check(&map, spec.uid, spec.gid);

  /* Forwarded signals are blocked before clone so none is lost; init inherits the mask and
   * reads them from a signalfd, like the monitor. */
  sigset_t set;
  forward_signals(&set);
  sigaddset(&set, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) die_errno("sigprocmask");
  if (spec.tty) tty_raw_caller();

  int report[2], life[2];
  report_channel(report);
  if (pipe2(life, O_CLOEXEC) < 0) die_errno("pipe");

  /* 3. Clone into every namespace at once: one syscall, and the child is pid 1 of its pid
   * namespace. The network namespace is skipped for "net host"; the cgroup namespace waits
   * until init is in the spec's cgroups, so that they are its root. */
  bool join_cgroups = spec.ncgroups > 0;
  int flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC |
              (join_cgroups ? 0 : CLONE_NEWCGROUP) | (spec.net_host ? 0 : CLONE_NEWNET);
  pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)flags | SIGCHLD, NULL, NULL, NULL, NULL);
  if (pid < 0) die_hint(errno, userns_hint(errno), "clone the sandbox namespaces");
  bool wait_for_maps = map.range || map.shifted;

  if (pid > 0) {
    /* Monitor. 4. Map the ids from outside when init cannot, and let it go on; then move it into
     * the spec's cgroups while it builds its filesystem (a v1 move waits for an RCU grace period,
     * ~ms), and tell it so before it starts anything. */
    close(report[1]);
    close(life[0]);
    for (size_t i = 0; i < views.n; i++) close(views.dirs[i].fd);
    struct monitor m = {.init = pid, .shown_init = pid, .report_fd = report[0],
                        .status_fd = opt.status_fd, .sync_fd = opt.sync_fd};
    for (size_t k = 0; k < NS_KINDS; k++) m.ns_fds[k] = -1;
    signal(SIGPIPE, SIG_IGN); /* a vanished caller or child must not kill the monitor */
    if (wait_for_maps) idmap_write_for(&map, pid);
    /* EPIPE: init died already; its report says why (monitor_run reads it). */
    if (wait_for_maps && !write_all(life[1], "g", 1) && errno != EPIPE)
      die_errno("release the sandbox");
    host_views_reap(&views);
    if (join_cgroups) {
      cgroups_join(&spec, pid, "the caller must be allowed to write its cgroup.procs "
                               "(a delegated cgroup v2 dir, or a v1 hierarchy as root)");
      if (!write_all(life[1], "c", 1) && errno != EPIPE) die_errno("release the sandbox");
    }
    int code = monitor_run(&m, &spec);
    return m.caller_gone ? 128 + SIGKILL : code;
  }

  /* Init (pid 1 inside). Die with the monitor, and check it did not already die before the
   * parent-death signal was armed (its end of the life pipe would be closed). */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) die_errno("PR_SET_PDEATHSIG");
  close(report[0]);
  close(life[1]);
  die_sink_report(report[1]);
  int keep[2 + MAX_HOST_VIEWS] = {report[1], life[0]};
  for (size_t i = 0; i < views.n; i++) keep[2 + i] = views.dirs[i].fd;
  close_fds_except(keep, 2 + views.n);
  struct pollfd alive = {life[0], POLLIN, 0};
  if (!wait_for_maps && poll(&alive, 1, 0) > 0 && (alive.revents & POLLHUP)) _exit(EXIT_SETUP);

  /* 4. uid/gid maps: the caller becomes root inside (written by us, or by the monitor). */
  if (wait_for_maps) {
    char go;
    if (read(life[0], &go, 1) != 1) _exit(EXIT_SETUP);
  }
  if (!map.range && !map.shifted) idmap_write_self(&map);
  if (map.shifted) {
    /* Take root's ids inside (host SHIFT_ID). The change cleared the parent-death signal: arm
     * it again, then check the monitor did not die in between. */
    idmap_become_root();
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) die_errno("PR_SET_PDEATHSIG");
    if (poll(&alive, 1, 0) > 0 && (alive.revents & POLLHUP)) _exit(EXIT_SETUP);
  }
  if (!join_cgroups) close(life[0]);
  /* Not dumpable: processes inside cannot ptrace init or open its fds (the caller's stdio). */
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) die_errno("PR_SET_DUMPABLE");

  name_init(argc, argv);

  /* Namespaced state that needs no filesystem: loopback and hostname. */
  if (!spec.net_host) loopback_up();
  if (sethostname(spec.hostname, strlen(spec.hostname)) < 0) die_errno("sethostname");

  /* 5. Mounts: host sources first (through the idmapped views for a root caller). When root
   * inside is host root (a caller whose sandbox could not shift), the kernel's plain uid
   * checks pass for it, so /proc/sys and a few other /proc files get covered (mount.c). Root
   * of a sandbox running Castle is no host root: its sandboxes nest uncovered, at every level. */
  struct mount_plan plan;
  mounts_stage_host_sources(&spec, &views, &plan);
  plan.mask_proc = !map.shifted && map.host_root;

  /* 6. pivot_root into the base tmpfs, assemble /newroot, pivot into it, detach the host. */
  mounts_pivot_to_base(&plan);
  mounts_assemble_root(&spec, &plan);
  mounts_enter_root(&plan);

  /* In the spec's cgroups now (the monitor says so), which become the root of our own cgroup
   * namespace. (A fuse-overlayfs daemon started above stays in the caller's cgroups.) */
  if (join_cgroups) {
    char joined;
    if (read(life[0], &joined, 1) != 1) _exit(EXIT_SETUP);
    close(life[0]);
    if (unshare(CLONE_NEWCGROUP) < 0) die_errno("unshare the cgroup namespace");
  }
  /* Hand our namespace files to the monitor for `enter`, before the command starts: nobody
   * outside can open them through /proc/<our pid>/ns (we are not dumpable). */
  enter_publish_namespaces(report[1], !spec.net_host);

  /* 7. Init: fork the command, which drops privileges, installs seccomp and execs. */
  init_run(&spec, &map, &plan, report[1]);
}
