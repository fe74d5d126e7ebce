/* caps.c: capability names and the drop. The command keeps only the kept set in its bounding,
 * permitted and effective sets (inheritable and ambient are emptied), so root inside holds a
 * docker-like build set and nothing that administers the (user-namespaced) system. */
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "kabi.h"
#include "sandbox.h"

static const char *const cap_names[] = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
};

int cap_from_name(const char *name) {
  for (size_t i = 0; i < N_ELEMENTS(cap_names); i++) {
    if (strcmp(cap_names[i], name) == 0) return (int)i;
    if (strncmp(name, "CAP_", 4) != 0 && strcmp(cap_names[i] + 4, name) == 0) return (int)i;
  }
  return -1;
}

/* Docker's default set: enough to install packages and chown build outputs as root inside. */
uint64_t caps_default_keep(void) {
  static const char *const keep[] = {
      "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
      "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
  };
  uint64_t set = 0;
  for (size_t i = 0; i < N_ELEMENTS(keep); i++) set |= 1ULL << cap_from_name(keep[i]);
  return set;
}

/* Drops every capability outside keep from the bounding set and empties the ambient set. Needs
 * CAP_SETPCAP, so it runs before the uid change. */
void caps_drop_bounding(uint64_t keep) {
  for (int cap = 0; cap < 64; cap++) {
    if (keep & (1ULL << cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
      if (errno == EINVAL) break; /* past the kernel's last capability */
      die_errno("drop capability %d from the bounding set", cap);
    }
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    die_errno("clear ambient capabilities");
}

/* Sets permitted and effective to set (keep for root inside, nothing for another uid, whose
 * permitted set the uid change already emptied) and empties inheritable. */
void caps_set_process(uint64_t set) {
  struct cap_header header = {.version = CASTLE_CAP_VERSION_3, .pid = 0};
  struct cap_data data[2] = {
      {.effective = (uint32_t)set, .permitted = (uint32_t)set, .inheritable = 0},
      {.effective = (uint32_t)(set >> 32), .permitted = (uint32_t)(set >> 32), .inheritable = 0},
  };
  if (syscall(SYS_capset, &header, data) < 0) die_errno("capset");
}
