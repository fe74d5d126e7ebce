/* probe.c: `castle-sandbox --probe` prints one JSON object saying what this machine supports,
 * by trying it: a user namespace, a kernel overlay mount with userxattr (and a whiteout made
 * through it), and a fuse-overlayfs mount. Tests and `castle doctor` use it to skip or explain. */
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "sandbox.h"

struct probe_result {
  char kernel_why[160];
  char fuse_why[160];
  bool kernel_ok, fuse_ok;
};

static const char *probe_base(void) {
  static const char *const dirs[] = {"/tmp", "/run", "/mnt", "/var/tmp"};
  struct stat st;
  for (size_t i = 0; i < N_ELEMENTS(dirs); i++)
    if (lstat(dirs[i], &st) == 0 && S_ISDIR(st.st_mode)) return dirs[i];
  return NULL;
}

static void probe_kernel(struct probe_result *r, const char *base) {
  static const char *const dirs[] = {"l1", "l2", "u", "w", "m"};
  for (size_t i = 0; i < N_ELEMENTS(dirs); i++) mkdir(dirs[i], 0755);
  int fd = open("l1/f", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0) close(fd);
  if (mount("overlay", "m", "overlay", 0, "lowerdir=l2:l1,upperdir=u,workdir=w,userxattr") < 0) {
    snprintf(r->kernel_why, sizeof r->kernel_why, "mount overlay with userxattr in %s: %s", base,
             strerror(errno));
    return;
  }
  struct stat st;
  if (unlink("m/f") < 0 || lstat("u/f", &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != 0) {
    snprintf(r->kernel_why, sizeof r->kernel_why, "overlayfs could not create a whiteout: %s",
             strerror(errno));
  } else {
    r->kernel_ok = true;
  }
  umount2("m", MNT_DETACH);
}

static void probe_fuse(struct probe_result *r) {
  const char *why = NULL;
  if (!fuse_available(&why)) {
    snprintf(r->fuse_why, sizeof r->fuse_why, "%s", why);
    return;
  }
  static const char *const dirs[] = {"fl", "fu", "fw", "fm"};
  for (size_t i = 0; i < N_ELEMENTS(dirs); i++) mkdir(dirs[i], 0755);
  char cwd[256];
  if (getcwd(cwd, sizeof cwd) == NULL) return;
  char *lower = xasprintf("%s/fl", cwd), *upper = xasprintf("%s/fu", cwd);
  char *work = xasprintf("%s/fw", cwd), *target = xasprintf("%s/fm", cwd);
  const char *lowers[] = {lower};
  struct overlay ov = {.lowers = lowers, .nlowers = 1, .upper = upper, .work = work};
  pid_t pid = fork();
  if (pid == 0) {
    die_sink_report(-1);
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (devnull >= 0) dup2(devnull, STDERR_FILENO);
    overlay_mount_fuse(&ov, target);
    umount2(target, MNT_DETACH);
    _exit(0);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    snprintf(r->fuse_why, sizeof r->fuse_why, "fuse-overlayfs failed to mount in a user namespace");
  else
    r->fuse_ok = true;
}

static void json_field(const char *name, bool ok, const char *why, bool last) {
  char escaped[512];
  json_escape(escaped, sizeof escaped, why);
  printf("\"%s\":{\"ok\":%s,\"reason\":%s%s%s}%s", name, ok ? "true" : "false",
         ok ? "" : "\"", ok ? "null" : escaped, ok ? "" : "\"", last ? "" : ",");
}

int probe_main(void) {
  struct probe_result *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (r == MAP_FAILED) die_errno("mmap");
  memset(r, 0, sizeof *r);
  struct idmap map;
  idmap_plan(&map);
  char userns_why[256] = "";
  bool userns_ok = false;

  /* The probe runs with the ids a sandbox would get: a root caller's as SHIFT_ID (shift.c). */
  int go[2];
  if (pipe2(go, O_CLOEXEC) < 0) die_errno("pipe");
  pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWNS | SIGCHLD, NULL, NULL, NULL,
                             NULL);
  if (pid < 0) {
    const char *hint = userns_hint(errno);
    snprintf(userns_why, sizeof userns_why, "clone(CLONE_NEWUSER): %s%s%s", strerror(errno),
             hint != NULL ? ": " : "", hint != NULL ? hint : "");
  } else if (pid == 0) {
    close(go[1]);
    if (map.shifted) {
      char c;
      if (read(go[0], &c, 1) != 1) _exit(2);
      idmap_become_root();
    } else {
      struct idmap single = map;
      single.range = false;
      idmap_write_self(&single);
    }
    const char *base = probe_base();
    if (base == NULL) _exit(3);
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) _exit(2);
    if (mount("probe", base, "tmpfs", 0, "mode=0755") < 0 || chdir(base) < 0) _exit(2);
    probe_kernel(r, base);
    probe_fuse(r);
    _exit(0);
  } else {
    if (map.shifted) idmap_write_for(&map, pid);
    if (!write_all(go[1], "g", 1)) die_errno("release the probe");
    int status;
    if (waitpid(pid, &status, 0) < 0) die_errno("waitpid");
    userns_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!userns_ok)
      snprintf(userns_why, sizeof userns_why,
               "a user namespace was created but setting it up failed (status %d)", status);
  }
  if (!userns_ok) {
    snprintf(r->kernel_why, sizeof r->kernel_why, "needs a user namespace");
    snprintf(r->fuse_why, sizeof r->fuse_why, "needs a user namespace");
  }
  printf("{");
  json_field("userNamespaces", userns_ok, userns_why, false);
  json_field("kernelOverlay", r->kernel_ok, r->kernel_why, false);
  json_field("fuseOverlay", r->fuse_ok, r->fuse_why, false);
  json_field("subordinateIds", map.range, "no /etc/subuid and /etc/subgid ranges for this user "
             "(or no newuidmap/newgidmap)", true);
  printf("}\n");
  return 0;
}
