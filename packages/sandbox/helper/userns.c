/* userns.c: the uid/gid maps of the new user namespace. Default: a single-id map (the caller
 * becomes uid/gid 0 inside), written by the child itself, with setgroups denied first as the
 * kernel requires. When the caller owns ranges in /etc/subuid and /etc/subgid and the setuid
 * helpers newuidmap/newgidmap exist, the monitor maps the full range instead: 0 -> caller,
 * 1..N -> the subordinate ids. /etc/passwd is read directly (no NSS), and only when /etc/subuid
 * is non-empty, so the common path costs nothing. A root caller's root inside is SHIFT_ID
 * instead (shift.c): the monitor writes "0 SHIFT_ID 1" and the child takes those ids. */
#include <grp.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "sandbox.h"

/* Why clone(CLONE_NEWUSER) failed, when the machine says so. */
const char *userns_hint(int err) {
  char buf[32] = "";
  FILE *f;
  if ((f = fopen("/proc/sys/user/max_user_namespaces", "re")) != NULL) {
    if (fgets(buf, sizeof buf, f) != NULL && strtol(buf, NULL, 10) == 0) {
      fclose(f);
      return "user namespaces are disabled: sysctl user.max_user_namespaces=0";
    }
    fclose(f);
  }
  if ((f = fopen("/proc/sys/kernel/unprivileged_userns_clone", "re")) != NULL) {
    if (fgets(buf, sizeof buf, f) != NULL && buf[0] == '0') {
      fclose(f);
      return "unprivileged user namespaces are disabled: sysctl kernel.unprivileged_userns_clone=0";
    }
    fclose(f);
  }
  if ((f = fopen("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "re")) != NULL) {
    if (fgets(buf, sizeof buf, f) != NULL && buf[0] == '1') {
      fclose(f);
      return "AppArmor restricts unprivileged user namespaces "
             "(sysctl kernel.apparmor_restrict_unprivileged_userns=1)";
    }
    fclose(f);
  }
  if (err == ENOSPC) return "the user namespace limit is reached (user.max_user_namespaces)";
  if (err == EPERM) return "running inside a seccomp/container profile that forbids user namespaces?";
  return NULL;
}

static const char *find_tool(const char *name) {
  static const char *const dirs[] = {"/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"};
  for (size_t i = 0; i < N_ELEMENTS(dirs); i++) {
    char *path = xasprintf("%s/%s", dirs[i], name);
    if (access(path, X_OK) == 0) return path;
    free(path);
  }
  return NULL;
}

static bool file_has_content(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && st.st_size > 0;
}

/* The user name of uid from /etc/passwd, or "" when it has none there. */
static void user_name(uid_t uid, char *out, size_t size) {
  out[0] = '\0';
  FILE *f = fopen("/etc/passwd", "re");
  if (f == NULL) return;
  char line[1024];
  while (fgets(line, sizeof line, f) != NULL) {
    char *name = strtok(line, ":");
    char *x = strtok(NULL, ":");
    char *id = strtok(NULL, ":");
    uint64_t v;
    if (name != NULL && x != NULL && id != NULL && parse_u64(id, UINT32_MAX, &v) && v == uid) {
      snprintf(out, size, "%s", name);
      break;
    }
  }
  fclose(f);
}

/* First "owner:start:count" line of path whose owner is name or the numeric id. */
static bool find_range(const char *path, const char *name, unsigned long id, unsigned long *start,
                       unsigned long *count) {
  FILE *f = fopen(path, "re");
  if (f == NULL) return false;
  char line[512], idstr[32];
  snprintf(idstr, sizeof idstr, "%lu", id);
  bool found = false;
  while (!found && fgets(line, sizeof line, f) != NULL) {
    line[strcspn(line, "\n")] = '\0';
    char *owner = strtok(line, ":");
    char *s = strtok(NULL, ":");
    char *c = strtok(NULL, ":");
    uint64_t vs, vc;
    if (owner == NULL || s == NULL || c == NULL) continue;
    if (strcmp(owner, idstr) != 0 && (name[0] == '\0' || strcmp(owner, name) != 0)) continue;
    if (!parse_u64(s, UINT32_MAX, &vs) || !parse_u64(c, UINT32_MAX, &vc) || vc == 0) continue;
    *start = (unsigned long)vs;
    *count = (unsigned long)vc;
    found = true;
  }
  fclose(f);
  return found;
}

void idmap_plan(struct idmap *map) {
  *map = (struct idmap){.outer_uid = geteuid(), .outer_gid = getegid()};
  map->host_root = (map->outer_uid == 0 || map->outer_gid == 0) && root_is_host_root();
  if (map->outer_uid == 0) {
    char why[200];
    map->shifted = shift_possible(why, sizeof why);
    if (!map->shifted && why[0] != '\0') warn("warning: the sandbox's root is host root: %s", why);
    return;
  }
  if (!file_has_content("/etc/subuid") || !file_has_content("/etc/subgid")) return;
  user_name(map->outer_uid, map->user, sizeof map->user);
  if (!find_range("/etc/subuid", map->user, map->outer_uid, &map->uid_start, &map->uid_count))
    return;
  if (!find_range("/etc/subgid", map->user, map->outer_gid, &map->gid_start, &map->gid_count))
    return;
  map->newuidmap = find_tool("newuidmap");
  map->newgidmap = find_tool("newgidmap");
  map->range = map->newuidmap != NULL && map->newgidmap != NULL;
}

void idmap_check(const struct idmap *map, uint32_t uid, uint32_t gid) {
  if (!map->range && (uid != 0 || gid != 0))
    die_hint(0,
             "add ranges for this user to /etc/subuid and /etc/subgid and install newuidmap "
             "(package uidmap)",
             "uid %u / gid %u is not mapped: without subordinate ids only uid 0 and gid 0 exist "
             "inside",
             uid, gid);
  if (map->range && (uid > map->uid_count || gid > map->gid_count))
    die("uid %u / gid %u is outside the mapped range 0..%lu / 0..%lu", uid, gid, map->uid_count,
        map->gid_count);
}

void idmap_write_self(const struct idmap *map) {
  char line[64];
  /* Unprivileged gid maps need setgroups denied first (CVE-2014-8989). */
  write_file("/proc/self/setgroups", "deny");
  snprintf(line, sizeof line, "0 %u 1\n", (unsigned)map->outer_uid);
  write_file("/proc/self/uid_map", line);
  snprintf(line, sizeof line, "0 %u 1\n", (unsigned)map->outer_gid);
  write_file("/proc/self/gid_map", line);
}

static void run_map_tool(const char *tool, pid_t child, unsigned long outer, unsigned long start,
                         unsigned long count) {
  char pid_s[16], outer_s[16], start_s[16], count_s[16];
  snprintf(pid_s, sizeof pid_s, "%d", (int)child);
  snprintf(outer_s, sizeof outer_s, "%lu", outer);
  snprintf(start_s, sizeof start_s, "%lu", start);
  snprintf(count_s, sizeof count_s, "%lu", count);
  pid_t pid = fork();
  if (pid < 0) die_errno("fork %s", tool);
  if (pid == 0) {
    const char *argv[] = {tool, pid_s, "0", outer_s, "1", "1", start_s, count_s, NULL};
    char *envp[] = {NULL};
    execve(tool, (char *const *)argv, envp);
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) die_errno("wait for %s", tool);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    die_hint(0, "check /etc/subuid, /etc/subgid and that the tool is setuid root",
             "%s %s 0 %s 1 1 %s %s failed (status %d)", tool, pid_s, outer_s, start_s, count_s,
             status);
}

void write_shifted_maps(pid_t child) {
  char path[64], line[32];
  snprintf(line, sizeof line, "0 %u 1\n", SHIFT_ID);
  snprintf(path, sizeof path, "/proc/%d/uid_map", (int)child);
  write_file(path, line);
  snprintf(path, sizeof path, "/proc/%d/gid_map", (int)child);
  write_file(path, line);
}

void idmap_write_for(const struct idmap *map, pid_t child) {
  if (map->shifted) {
    /* We are host root: the kernel takes any map from us, setgroups stays allowed (the child
     * drops host root's groups with it) and no setuid tool is needed. */
    write_shifted_maps(child);
    return;
  }
  run_map_tool(map->newuidmap, child, map->outer_uid, map->uid_start, map->uid_count);
  run_map_tool(map->newgidmap, child, map->outer_gid, map->gid_start, map->gid_count);
}

void idmap_become_root(void) {
  /* Host root's supplementary groups first (group 0 would still open group-0 files), then the
   * gid and uid that are 0 inside. Capabilities in the namespace are kept: to the kernel this
   * is a move to the namespace's root, not away from it. */
  if (setgroups(0, NULL) < 0) die_errno("drop host root's groups");
  if (setresgid(0, 0, 0) < 0) die_errno("setresgid to root inside");
  if (setresuid(0, 0, 0) < 0) die_errno("setresuid to root inside");
}
