/* seccomp.c: the filter installed last, just before exec. It is a deny list (builds must be able
 * to do anything a normal unprivileged process does, including creating nested user namespaces
 * so Castle can run inside itself). The reasons for each entry are in packages/sandbox/README.md.
 *
 *   - other ABIs (i386 via int 0x80, x32): EPERM for everything; the filter below only knows
 *     the native numbers, so another ABI would slip past it.
 *   - ioctl TIOCSTI / TIOCLINUX: pushing bytes into (or poking) a terminal's input queue;
 *     compared on the low 32 bits, as the kernel truncates the command to unsigned int.
 *   - keyring syscalls, bpf, userfaultfd, perf_event_open, io_uring: large kernel attack surface
 *     that builds do not need; io_uring gets ENOSYS so runtimes (libuv) fall back quietly.
 *   - module, kexec, reboot, swap, acct, quotactl, syslog, lookup_dcookie, open_by_handle_at,
 *     name_to_handle_at: host administration, or a way around path-based isolation.
 *   - personality: only the values docker allows (0, PER_LINUX32, UNAME26 and the query). */
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "kabi.h"
#include "sandbox.h"

#define STMT(code, k) ((struct filter_insn){(uint16_t)(code), 0, 0, (uint32_t)(k)})
#define JUMP(code, k, jt, jf) ((struct filter_insn){(uint16_t)(code), (jt), (jf), (uint32_t)(k)})
#define RET_ERRNO(e) (SECCOMP_RET_ERRNO_ | ((uint32_t)(e)&0xffffU))

struct denied {
  long nr;
  int err;
};

static const struct denied denied[] = {
    {SYS_keyctl, EPERM},          {SYS_add_key, EPERM},
    {SYS_request_key, EPERM},     {SYS_bpf, EPERM},
    {SYS_userfaultfd, EPERM},     {SYS_perf_event_open, EPERM},
    {SYS_kexec_load, EPERM},
#ifdef SYS_kexec_file_load
    {SYS_kexec_file_load, EPERM},
#endif
    {SYS_init_module, EPERM},     {SYS_finit_module, EPERM},
    {SYS_delete_module, EPERM},   {SYS_open_by_handle_at, EPERM},
    {SYS_name_to_handle_at, EPERM}, {SYS_acct, EPERM},
    {SYS_swapon, EPERM},          {SYS_swapoff, EPERM},
    {SYS_reboot, EPERM},          {SYS_syslog, EPERM},
    {SYS_lookup_dcookie, EPERM},  {SYS_quotactl, EPERM},
#ifdef SYS_quotactl_fd
    {SYS_quotactl_fd, EPERM},
#endif
#ifdef SYS_io_uring_setup
    {SYS_io_uring_setup, ENOSYS}, {SYS_io_uring_enter, ENOSYS},
    {SYS_io_uring_register, ENOSYS},
#endif
};

/* personality(2) values docker allows: PER_LINUX, PER_LINUX32, UNAME26, both, and the query. */
static const uint32_t allowed_personality[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffffU};

#define TIOCSTI_ 0x5412U
#define TIOCLINUX_ 0x541CU

void seccomp_install(void) {
  struct filter_insn prog[128];
  size_t n = 0;

  /* Native ABI only. */
  prog[n++] = STMT(BPF_LD_W_ABS, SECCOMP_DATA_ARCH);
  prog[n++] = JUMP(BPF_JMP_JEQ_K, CASTLE_AUDIT_ARCH, 1, 0);
  prog[n++] = STMT(BPF_RET_K, RET_ERRNO(EPERM));
  prog[n++] = STMT(BPF_LD_W_ABS, SECCOMP_DATA_NR);
#ifdef CASTLE_X32_SYSCALL_BIT
  prog[n++] = JUMP(BPF_JMP_JGE_K, CASTLE_X32_SYSCALL_BIT, 0, 1);
  prog[n++] = STMT(BPF_RET_K, RET_ERRNO(EPERM));
#endif

  /* Plain denials: if nr matches, return its errno. */
  for (size_t i = 0; i < N_ELEMENTS(denied); i++) {
    prog[n++] = JUMP(BPF_JMP_JEQ_K, denied[i].nr, 0, 1);
    prog[n++] = STMT(BPF_RET_K, RET_ERRNO(denied[i].err));
  }

  /* ioctl: deny two commands (the accumulator still holds nr on the way out). */
  prog[n++] = JUMP(BPF_JMP_JEQ_K, SYS_ioctl, 0, 5);
  prog[n++] = STMT(BPF_LD_W_ABS, SECCOMP_DATA_ARG_LO(1));
  prog[n++] = JUMP(BPF_JMP_JEQ_K, TIOCSTI_, 1, 0);
  prog[n++] = JUMP(BPF_JMP_JEQ_K, TIOCLINUX_, 0, 1);
  prog[n++] = STMT(BPF_RET_K, RET_ERRNO(EPERM));
  prog[n++] = STMT(BPF_RET_K, SECCOMP_RET_ALLOW_);

  /* personality: allow-list of values, EPERM for the rest. */
  size_t np = N_ELEMENTS(allowed_personality);
  prog[n++] = JUMP(BPF_JMP_JEQ_K, SYS_personality, 0, (uint8_t)(np + 3));
  prog[n++] = STMT(BPF_LD_W_ABS, SECCOMP_DATA_ARG_LO(0));
  for (size_t i = 0; i < np; i++)
    prog[n++] = JUMP(BPF_JMP_JEQ_K, allowed_personality[i], (uint8_t)(np - i), 0);
  prog[n++] = STMT(BPF_RET_K, RET_ERRNO(EPERM));
  prog[n++] = STMT(BPF_RET_K, SECCOMP_RET_ALLOW_);

  prog[n++] = STMT(BPF_RET_K, SECCOMP_RET_ALLOW_);
  if (n > N_ELEMENTS(prog)) die("seccomp filter too long (internal error)");

  struct filter_prog fprog = {.len = (unsigned short)n, .filter = prog};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER_, 0, &fprog) < 0)
    die_errno("install the seccomp filter");
}
