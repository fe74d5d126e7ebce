/* kabi.h: the kernel UAPI bits castle-sandbox needs that libc headers do not all carry (musl
 * ships no <linux/...> headers): seccomp and classic BPF, capabilities, the mount-attribute API,
 * close_range, keyctl and a few pty ioctls. Values are copied from the kernel's UAPI numbers;
 * each block is guarded so a libc that already defines them wins. */
#pragma once

#include <stdint.h>
#include <sys/syscall.h>

/* ---- classic BPF (linux/filter.h, linux/bpf_common.h) ---- */
struct filter_insn {
  uint16_t code;
  uint8_t jt;
  uint8_t jf;
  uint32_t k;
};
struct filter_prog {
  unsigned short len;
  const struct filter_insn *filter;
};
#define BPF_LD_W_ABS 0x20 /* BPF_LD | BPF_W | BPF_ABS */
#define BPF_JMP_JEQ_K 0x15 /* BPF_JMP | BPF_JEQ | BPF_K */
#define BPF_JMP_JGE_K 0x35 /* BPF_JMP | BPF_JGE | BPF_K */
#define BPF_RET_K 0x06 /* BPF_RET | BPF_K */

/* ---- seccomp (linux/seccomp.h, linux/audit.h) ---- */
#define SECCOMP_SET_MODE_FILTER_ 1
#define SECCOMP_RET_ALLOW_ 0x7fff0000U
#define SECCOMP_RET_ERRNO_ 0x00050000U
#define SECCOMP_DATA_NR 0 /* offsetof(struct seccomp_data, nr) */
#define SECCOMP_DATA_ARCH 4 /* offsetof(struct seccomp_data, arch) */
#define SECCOMP_DATA_ARG_LO(n) (16 + 8 * (n)) /* low 32 bits of args[n], little endian */
#if defined(__x86_64__)
#define CASTLE_AUDIT_ARCH 0xc000003eU /* AUDIT_ARCH_X86_64 */
#define CASTLE_X32_SYSCALL_BIT 0x40000000U
#elif defined(__aarch64__)
#define CASTLE_AUDIT_ARCH 0xc00000b7U /* AUDIT_ARCH_AARCH64 */
#else
#error "castle-sandbox: the seccomp filter knows x86_64 and aarch64 only"
#endif

/* ---- capabilities (linux/capability.h) ---- */
struct cap_header {
  uint32_t version;
  int pid;
};
struct cap_data {
  uint32_t effective;
  uint32_t permitted;
  uint32_t inheritable;
};
#define CASTLE_CAP_VERSION_3 0x20080522U
#ifndef PR_CAPBSET_DROP
#define PR_CAPBSET_DROP 24
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#endif
#ifndef PR_CAP_AMBIENT_CLEAR_ALL
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#ifndef PR_SET_NO_NEW_PRIVS
#define PR_SET_NO_NEW_PRIVS 38
#endif

/* ---- mount attributes (linux/mount.h), close_range, keyctl ---- */
struct castle_mount_attr {
  uint64_t attr_set;
  uint64_t attr_clr;
  uint64_t propagation;
  uint64_t userns_fd;
};
#define CASTLE_MOUNT_ATTR_RDONLY 0x1ULL
#define CASTLE_MOUNT_ATTR_NOSUID 0x2ULL
#define CASTLE_MOUNT_ATTR_NODEV 0x4ULL
#define CASTLE_MOUNT_ATTR_NOEXEC 0x8ULL
#define CASTLE_MOUNT_ATTR_IDMAP 0x00100000ULL /* 5.12+ */
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#define CASTLE_CLOSE_RANGE_CLOEXEC (1U << 2)
/* The mount API (5.2+); overlayfs takes "lowerdir+" one layer at a time since 6.8. */
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#define CASTLE_OPEN_TREE_CLONE 1U
/* statx's mount id (5.8+): which mount a path is on. The struct is 256 bytes; the id at 0x90. */
#ifndef SYS_statx
#define SYS_statx 332
#endif
#define CASTLE_STATX_MNT_ID 0x00001000U
struct castle_statx {
  uint8_t before_mnt_id[0x90];
  uint64_t mnt_id;
  uint8_t after_mnt_id[0x100 - 0x98];
};
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif
#define CASTLE_FSOPEN_CLOEXEC 0x1U
#define CASTLE_FSCONFIG_SET_FLAG 0U
#define CASTLE_FSCONFIG_SET_STRING 1U
#define CASTLE_FSCONFIG_CMD_CREATE 6U
#define CASTLE_FSMOUNT_CLOEXEC 0x1U
#define CASTLE_MOVE_MOUNT_F_EMPTY_PATH 0x4U
#define CASTLE_KEYCTL_JOIN_SESSION_KEYRING 1

/* ---- ptys ---- */
#ifndef TIOCGPTPEER
#define TIOCGPTPEER 0x5441
#endif

/* ---- nsfs (linux/nsfs.h); NS_GET_PID_FROM_PIDNS is 6.9+ (older kernels: ENOTTY) ---- */
#define CASTLE_NS_GET_USERNS 0xb701U          /* _IO(0xb7, 0x1) */
#define CASTLE_NS_GET_PARENT 0xb702U          /* _IO(0xb7, 0x2) */
#define CASTLE_NS_GET_OWNER_UID 0xb704U       /* _IO(0xb7, 0x4) */
#define CASTLE_NS_GET_PID_FROM_PIDNS 0x8004b706U /* _IOR(0xb7, 0x6, int) */
