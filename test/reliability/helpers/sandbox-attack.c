/* sandbox-attack.c: escape attempts that run inside a Castle sandbox, compiled static into the
 * test rootfs by test/reliability/sandbox-escape.test.ts. Usage: attack <case> [args...].
 * Prints one "name=result" line per attempt: "ok" when the call succeeded, else the errno's name
 * (EPERM, ENOENT...). Reads that must never succeed print "LEAK" instead of "ok". Several cases
 * also retry from a nested user + mount namespace, where the process holds every capability
 * (of that namespace) and every mount it inherited is locked. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *errname(int e) {
  static char other[16];
  switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EIO: return "EIO";
    case ENXIO: return "ENXIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    case EINVAL: return "EINVAL";
    case ENOTTY: return "ENOTTY";
    case EROFS: return "EROFS";
    case ENOSYS: return "ENOSYS";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENETUNREACH: return "ENETUNREACH";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ETIMEDOUT: return "ETIMEDOUT";
    default: snprintf(other, sizeof other, "errno%d", e); return other;
  }
}

static void report(const char *name, long rc) {
  printf("%s=%s\n", name, rc >= 0 ? "ok" : errname(errno));
  fflush(stdout);
}

/* A read of something that must stay out of reach: "LEAK" if it returned bytes, "empty" for a
 * file that opens but reads as nothing (a masked /proc file is the host's /dev/null). */
static void must_not_read(const char *name, const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  char buf[64];
  ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
  if (n > 0) printf("%s=LEAK\n", name);
  else if (n == 0) printf("%s=empty\n", name);
  else printf("%s=%s\n", name, errname(errno));
  if (fd >= 0) close(fd);
  fflush(stdout);
}

static void write_text(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (write(fd, text, strlen(text)) < 0) perror(path);
    close(fd);
  }
}

/* A nested user + mount namespace: full capabilities there, inherited mounts locked. */
static int nested(int extra) {
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS | extra) < 0) return -1;
  write_text("/proc/self/setgroups", "deny");
  write_text("/proc/self/uid_map", "0 0 1");
  write_text("/proc/self/gid_map", "0 0 1");
  return 0;
}

/* ---- cases ---- */

static void case_ptrace(char **args) {
  pid_t host = (pid_t)atoi(args[0]);
  char path[64];
  report("attach_host", ptrace(PTRACE_ATTACH, host, 0, 0));
  report("seize_host", ptrace(PTRACE_SEIZE, host, 0, 0));
  report("kill_host", kill(host, 0));
  report("pidfd_host", syscall(SYS_pidfd_open, host, 0));
  snprintf(path, sizeof path, "/proc/%d/status", (int)host);
  must_not_read("proc_host", path);
  report("attach_init", ptrace(PTRACE_ATTACH, 1, 0, 0));
  must_not_read("init_fd0", "/proc/1/fd/0");
  must_not_read("init_environ", "/proc/1/environ");
  must_not_read("init_ns_user", "/proc/1/ns/user");
}

static void case_tty(void) {
  char c = 'x', sub = 2;
  report("tiocsti", ioctl(0, TIOCSTI, &c));
  report("tiocsti_high_bits", syscall(SYS_ioctl, 0, 0xffffffff00000000UL | TIOCSTI, &c));
  report("tioclinux", ioctl(0, TIOCLINUX, &sub));
  int tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
  report("open_dev_tty", tty);
  if (tty >= 0) report("tiocsti_dev_tty", ioctl(tty, TIOCSTI, &c));
  printf("stdin_is_tty=%s\n", isatty(0) ? "yes" : "no");
}

static void case_mounts(void) {
  report("umount_root", umount2("/", MNT_DETACH));
  report("remount_root_rw", mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND, NULL));
  report("remount_ro_bind_rw", mount(NULL, "/ro", NULL, MS_REMOUNT | MS_BIND, NULL));
  report("umount_ro_bind", umount2("/ro", MNT_DETACH));
  report("mount_tmpfs", mount("x", "/tmp", "tmpfs", 0, NULL));
  report("pivot_root", syscall(SYS_pivot_root, ".", "."));
  report("write_ro_bind", open("/ro/file", O_WRONLY | O_CLOEXEC));
  if (nested(0) < 0) {
    report("nested", -1);
    return;
  }
  report("nested_remount_ro_bind_rw", mount(NULL, "/ro", NULL, MS_REMOUNT | MS_BIND, NULL));
  report("nested_umount_ro_bind", umount2("/ro", MNT_DETACH));
  report("nested_write_ro_bind", open("/ro/file", O_WRONLY | O_CLOEXEC));
  report("nested_umount_root", umount2("/", MNT_DETACH));
  report("nested_umount_dev_null", umount2("/dev/null", MNT_DETACH));
  mkdir("/tmp/sys", 0755);
  report("nested_mount_sysfs", mount("sysfs", "/tmp/sys", "sysfs", 0, NULL));
}

/* Each trick tries to open every secret (a host path outside all mounts). */
static void try_secrets(const char *trick, const char *prefix, char **secrets) {
  for (int i = 0; secrets[i] != NULL; i++) {
    char name[96], path[4096];
    snprintf(name, sizeof name, "%s_%d", trick, i);
    snprintf(path, sizeof path, "%s%s", prefix, secrets[i]);
    must_not_read(name, path);
  }
}

/* The classic chroot escape: keep an fd to "/", chroot into a subdir, fchdir back out, climb. */
static void chroot_escape(const char *trick, char **secrets) {
  struct stat before, after;
  stat("/", &before);
  int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  mkdir("/tmp/jail", 0755);
  if (chroot("/tmp/jail") < 0 || fchdir(fd) < 0) {
    report(trick, -1);
    return;
  }
  for (int i = 0; i < 64; i++)
    if (chdir("..") < 0) break;
  report(trick, chroot("."));
  try_secrets(trick, "", secrets);
  stat("/", &after);
  printf("%s_root=%s\n", trick, after.st_ino == before.st_ino && after.st_dev == before.st_dev ? "sandbox" : "OTHER");
  fflush(stdout); /* the caller is a forked child that leaves with _exit */
}

static void case_chroot(char **secrets) {
  try_secrets("direct", "", secrets);
  try_secrets("dotdot", "/../../../../../..", secrets);
  try_secrets("proc_self_root", "/proc/self/root", secrets);
  try_secrets("proc_init_root", "/proc/1/root", secrets);
  try_secrets("proc_init_cwd", "/proc/1/cwd/../../../..", secrets);
  if (chdir("/tmp") == 0) try_secrets("proc_self_cwd", "/proc/self/cwd/../../../..", secrets);
  int fd = open("/", O_PATH | O_CLOEXEC);
  char prefix[64];
  snprintf(prefix, sizeof prefix, "/proc/self/fd/%d/../../..", fd);
  try_secrets("proc_self_fd", prefix, secrets);
  pid_t pid = fork();
  if (pid == 0) {
    chroot_escape("chroot_fd", secrets);
    _exit(0);
  }
  waitpid(pid, NULL, 0);
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    if (nested(0) < 0) _exit(1);
    /* With CAP_SYS_ADMIN here: bind the root elsewhere and pivot into it; still the sandbox. */
    mkdir("/tmp/nroot", 0755);
    report("nested_bind_root", mount("/", "/tmp/nroot", NULL, MS_BIND | MS_REC, NULL));
    try_secrets("nested_bind_root", "/tmp/nroot", secrets);
    report("nested_pivot", chdir("/tmp/nroot") == 0 ? syscall(SYS_pivot_root, ".", ".") : -1);
    try_secrets("nested_pivot", "", secrets);
    chroot_escape("nested_chroot_fd", secrets);
    _exit(0);
  }
  waitpid(pid, NULL, 0);
}

struct handle {
  unsigned int bytes;
  int type;
  unsigned char data[128];
};

static void try_handles(const char *prefix) {
  struct handle h = {.bytes = 128};
  int mount_id;
  char name[64];
  snprintf(name, sizeof name, "%sname_to_handle_at", prefix);
  report(name, syscall(SYS_name_to_handle_at, AT_FDCWD, "/", &h, &mount_id, 0));
  /* "shocker": a hand-made ext4 handle for inode 2, the root of the host's filesystem. */
  struct handle root = {.bytes = 8, .type = 1, .data = {2}};
  int dirfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  snprintf(name, sizeof name, "%sopen_by_handle_at", prefix);
  report(name, syscall(SYS_open_by_handle_at, dirfd, &root, O_RDONLY));
}

static void case_handles(void) {
  try_handles("");
  if (nested(0) == 0) try_handles("nested_");
}

static void case_ids(char **args) {
  printf("uid=%d euid=%d\n", (int)getuid(), (int)geteuid());
  char status[4096];
  int fd = open("/proc/self/status", O_RDONLY);
  ssize_t n = fd >= 0 ? read(fd, status, sizeof status - 1) : -1;
  status[n > 0 ? n : 0] = '\0';
  char *nnp = strstr(status, "NoNewPrivs:");
  printf("no_new_privs=%c\n", nnp != NULL ? nnp[12] : '?');
  if (args[0] != NULL) must_not_read("other_users_file", args[0]);
  if (args[0] != NULL && args[1] != NULL && strcmp(args[1], "hold") == 0) {
    printf("holding\n");
    fflush(stdout);
    pause();
  }
}

static void case_devices(void) {
  report("mknod_block_sda", mknod("/tmp/sda", S_IFBLK | 0600, makedev(8, 0)));
  report("mknod_char_mem", mknod("/tmp/mem", S_IFCHR | 0600, makedev(1, 1)));
  report("mknod_in_dev", mknod("/dev/sda", S_IFBLK | 0600, makedev(8, 0)));
  report("chmod_dev_null", chmod("/dev/null", 0777));
  report("chown_dev_zero", chown("/dev/zero", 5, 5));
  report("remount_dev_null_rw", mount(NULL, "/dev/null", NULL, MS_REMOUNT | MS_BIND, NULL));
  must_not_read("open_dev_sda", "/dev/sda");
  must_not_read("open_dev_vda", "/dev/vda");
  must_not_read("open_dev_mem", "/dev/mem");
  must_not_read("open_dev_kmsg", "/dev/kmsg");
  if (nested(0) == 0) {
    report("nested_mknod_block", mknod("/tmp/sdb", S_IFBLK | 0600, makedev(8, 16)));
    report("nested_chmod_dev_null", chmod("/dev/null", 0777));
  }
  DIR *d = opendir("/dev");
  struct dirent *e;
  printf("dev=");
  while (d != NULL && (e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') printf("%s,", e->d_name);
  printf("\n");
}

static void case_network(char **args) {
  int port = atoi(args[0]);
  struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  report("tcp_host_loopback", connect(s, (struct sockaddr *)&in, sizeof in));
  close(s);
  if (args[1] != NULL && args[1][0] != '\0') {
    inet_pton(AF_INET, args[1], &in.sin_addr);
    s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    report("tcp_host_address", connect(s, (struct sockaddr *)&in, sizeof in));
    close(s);
  }
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  size_t len = strlen(args[2]);
  memcpy(un.sun_path + 1, args[2], len); /* abstract: sun_path[0] == '\0' */
  s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  report("unix_abstract_host", connect(s, (struct sockaddr *)&un, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len)));
  close(s);
  struct if_nameindex *ifs = if_nameindex();
  printf("interfaces=");
  for (struct if_nameindex *i = ifs; i != NULL && i->if_index != 0; i++) printf("%s,", i->if_name);
  printf("\n");
}

static void case_seccomp(void) {
  report("keyctl", syscall(SYS_keyctl, 0, 0, 0, 0, 0));
  report("add_key", syscall(SYS_add_key, "user", "castle", "x", 1, -3));
  report("request_key", syscall(SYS_request_key, "user", "castle", NULL, 0));
  report("bpf", syscall(SYS_bpf, 0, NULL, 0));
  report("userfaultfd", syscall(SYS_userfaultfd, 0));
  report("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
  report("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
  report("kexec_file_load", syscall(SYS_kexec_file_load, -1, -1, 0, "", 0));
  report("init_module", syscall(SYS_init_module, NULL, 0, ""));
  report("finit_module", syscall(SYS_finit_module, -1, "", 0));
  report("delete_module", syscall(SYS_delete_module, "loop", 0));
  report("io_uring_setup", syscall(SYS_io_uring_setup, 1, NULL));
  report("io_uring_enter", syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0));
  report("io_uring_register", syscall(SYS_io_uring_register, -1, 0, NULL, 0));
  report("reboot", syscall(SYS_reboot, 0, 0, 0, NULL));
  report("swapon", syscall(SYS_swapon, "/nonexistent", 0));
  report("acct", syscall(SYS_acct, NULL));
  report("syslog", syscall(SYS_syslog, 3, NULL, 0));
  report("open_by_handle_at", syscall(SYS_open_by_handle_at, -1, NULL, 0));
  report("personality_read_implies_exec", syscall(SYS_personality, 0x0400000));
}

static void case_abi(void) {
#if defined(__x86_64__)
  long r;
  __asm__ volatile("int $0x80" : "=a"(r) : "a"(20) : "memory"); /* i386 getpid */
  printf("int80_getpid=%s\n", r < 0 ? errname((int)-r) : "ok");
  __asm__ volatile("int $0x80" : "=a"(r) : "a"(1), "b"(0) : "memory"); /* i386 exit(0) */
  printf("int80_exit=%s\n", r < 0 ? errname((int)-r) : "ok");
  report("x32_getpid", syscall(0x40000000L | SYS_getpid));
#else
  printf("abi=not-x86_64\n");
#endif
}

static void case_caps(void) {
  char status[4096];
  int fd = open("/proc/self/status", O_RDONLY);
  ssize_t n = fd >= 0 ? read(fd, status, sizeof status - 1) : -1;
  status[n > 0 ? n : 0] = '\0';
  for (char *line = strtok(status, "\n"); line != NULL; line = strtok(NULL, "\n"))
    if (strncmp(line, "Cap", 3) == 0) {
      char *tab = strchr(line, '\t');
      if (tab != NULL) printf("%.*s=%s\n", (int)(tab - line - 1), line, tab + 1);
    }
  /* Capabilities outside the kept set. */
  report("sethostname", sethostname("escaped", 7));                  /* CAP_SYS_ADMIN */
  struct timeval tv = {0, 0};
  report("settimeofday", settimeofday(&tv, NULL));                    /* CAP_SYS_TIME */
  report("setpriority_minus_20", setpriority(PRIO_PROCESS, 0, -20));  /* CAP_SYS_NICE */
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  report("set_lo_down", ioctl(s, SIOCSIFFLAGS, &ifr));                /* CAP_NET_ADMIN */
  report("ambient_raise_sys_admin", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, 21, 0, 0));
  struct { unsigned version; int pid; } header = {0x20080522, 0};
  struct { unsigned eff, perm, inh; } data[2] = {{~0U, ~0U, 0}, {~0U, ~0U, 0}};
  report("capset_all", syscall(SYS_capset, &header, data));
}

static void case_proc(void) {
  char value[64] = "";
  int fd = open("/proc/sys/vm/overcommit_ratio", O_RDONLY);
  ssize_t n = fd >= 0 ? read(fd, value, sizeof value - 1) : -1;
  value[n > 0 ? n : 0] = '\0';
  fd = open("/proc/sys/vm/overcommit_ratio", O_WRONLY | O_CLOEXEC);
  /* Only ever the value it already has: a failed protection must change nothing. */
  report("write_sysctl_vm", fd >= 0 ? write(fd, value, strlen(value)) : -1);
  report("open_sysctl_kernel_w", open("/proc/sys/kernel/panic", O_WRONLY | O_CLOEXEC));
  report("open_irq_affinity_w", open("/proc/irq/default_smp_affinity", O_WRONLY | O_CLOEXEC));
  report("open_sysrq_trigger_w", open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC));
  must_not_read("read_kcore", "/proc/kcore");
  report("sys_exists", access("/sys/kernel", F_OK));
  if (nested(CLONE_NEWPID) < 0) return;
  report("nested_umount_proc_sys", umount2("/proc/sys", MNT_DETACH));
  mkdir("/tmp/sys", 0755);
  report("nested_mount_sysfs", mount("sysfs", "/tmp/sys", "sysfs", 0, NULL));
  pid_t pid = fork(); /* pid 1 of the new pid namespace, which a fresh proc needs */
  if (pid == 0) {
    mkdir("/tmp/proc", 0755);
    int r = mount("proc", "/tmp/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    printf("nested_mount_proc=%s\n", r == 0 ? "ok" : errname(errno));
    if (r == 0) report("nested_proc_sysctl_w", open("/tmp/proc/sys/kernel/panic", O_WRONLY | O_CLOEXEC));
    fflush(stdout);
    _exit(0);
  }
  waitpid(pid, NULL, 0);
}

/* Forks until the kernel refuses; every child waits. Prints how many it got and why it stopped. */
static void case_forkbomb(void) {
  int count = 0, err = 0;
  for (;;) {
    pid_t pid = fork();
    if (pid == 0) {
      pause();
      _exit(0);
    }
    if (pid < 0) {
      err = errno;
      break;
    }
    if (++count >= 100000) break;
  }
  printf("forked=%d\nstopped=%s\n", count, err ? errname(err) : "limit");
}

/* What the issue saw a root-started sandbox do: a nested user + mount + cgroup namespace (whose
 * cgroup root is the sandbox's own cgroup) mounts each cgroup hierarchy and writes "no limit"
 * into its own cgroup's limit files. "hold" then waits, so the caller can read the host's side. */
static void case_cgroup(char **args) {
  static const struct {
    const char *name, *fstype, *options, *file, *value;
  } limits[] = {
      {"pids", "cgroup", "pids", "pids.max", "max"},
      {"memory", "cgroup", "memory", "memory.limit_in_bytes", "-1"},
      {"cpu", "cgroup", "cpu", "cpu.cfs_quota_us", "-1"},
      {"v2", "cgroup2", NULL, "pids.max", "max"},
      {"v2_memory", "cgroup2", NULL, "memory.max", "max"},
  };
  if (nested(CLONE_NEWCGROUP) < 0) {
    report("nested", -1);
    return;
  }
  mkdir("/tmp/cg", 0755);
  for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
    char dir[64], file[128], name[64];
    snprintf(dir, sizeof dir, "/tmp/cg/%s", limits[i].name);
    mkdir(dir, 0755);
    snprintf(name, sizeof name, "mount_%s", limits[i].name);
    int mounted = mount("cgroup", dir, limits[i].fstype, 0, limits[i].options);
    report(name, mounted);
    if (mounted < 0) continue;
    snprintf(file, sizeof file, "%s/%s", dir, limits[i].file);
    snprintf(name, sizeof name, "raise_%s", limits[i].name);
    int fd = open(file, O_WRONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) continue; /* no such limit here (a v2 without the controller) */
    report(name, fd >= 0 ? write(fd, limits[i].value, strlen(limits[i].value)) : -1);
    if (fd >= 0) close(fd);
  }
  if (args[0] != NULL && strcmp(args[0], "hold") == 0) {
    printf("holding\n");
    fflush(stdout);
    pause();
  }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: attack <case> [args...]\n");
    return 2;
  }
  const char *c = argv[1];
  char **args = argv + 2;
  if (strcmp(c, "ptrace") == 0) case_ptrace(args);
  else if (strcmp(c, "tty") == 0) case_tty();
  else if (strcmp(c, "mounts") == 0) case_mounts();
  else if (strcmp(c, "chroot") == 0) case_chroot(args);
  else if (strcmp(c, "handles") == 0) case_handles();
  else if (strcmp(c, "ids") == 0) case_ids(args);
  else if (strcmp(c, "devices") == 0) case_devices();
  else if (strcmp(c, "network") == 0) case_network(args);
  else if (strcmp(c, "seccomp") == 0) case_seccomp();
  else if (strcmp(c, "abi") == 0) case_abi();
  else if (strcmp(c, "caps") == 0) case_caps();
  else if (strcmp(c, "proc") == 0) case_proc();
  else if (strcmp(c, "forkbomb") == 0) case_forkbomb();
  else if (strcmp(c, "cgroup") == 0) case_cgroup(args);
  else {
    fprintf(stderr, "attack: unknown case %s\n", c);
    return 2;
  }
  return 0;
}
