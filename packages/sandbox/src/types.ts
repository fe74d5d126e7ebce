// Owns the nouns of the sandbox: what a caller asks for (SandboxSpec) and what it gets back
// (SandboxExit, SandboxStarted). The C helper reads a serialised SandboxSpec; see spec.ts.

/** A filesystem composed by overlayfs: read-only lowers, optionally one writable upper. */
export interface OverlaySpec {
  /**
   * Read-only lower directories, ordered bottom (index 0, e.g. the base rootfs) to top.
   * At most 500. Whiteouts (0/0 char devices) and `user.overlay.opaque` dirs in a lower are honoured.
   */
  lowers: string[];
  /** Writable upper directory; writes and whiteouts land here. Omit for a read-only mount. */
  upper?: string;
  /** overlayfs work directory: empty, on the same filesystem as `upper`. Required with `upper`. */
  work?: string;
  /**
   * Mount with overlayfs's "volatile" option: no sync of the upper's whole filesystem when the
   * sandbox ends (saves ~3-4 ms per sandbox on ext4, far more on a busy disk). Writes are then as
   * durable as any unsynced write; callers that keep the upper must fsync what they commit.
   * Needs `upper`. Default false.
   */
  volatile?: boolean;
}

/** A mount made inside the sandbox after the root, in the order given. */
export type MountSpec =
  | { type: "bind"; source: string; target: string; readonly?: boolean }
  | ({ type: "overlay"; target: string } & OverlaySpec)
  | { type: "tmpfs"; target: string; sizeBytes?: number; mode?: number };

export type RlimitName =
  | "as" | "core" | "cpu" | "data" | "fsize" | "memlock" | "nofile" | "nproc" | "stack";

/** Which overlay implementation builds overlay mounts. "auto" prefers the kernel's. */
export type OverlayDriver = "auto" | "kernel" | "fuse";

export interface SandboxSpec {
  /** The root filesystem: an overlay of layers (bottom first), optionally with a writable upper. */
  root: OverlaySpec;
  /** Extra mounts, applied in order after the root; targets are absolute paths inside. */
  mounts?: MountSpec[];
  /** Command and arguments; argv[0] is looked up in PATH from `env` when it has no slash. */
  argv: string[];
  /** The whole environment of the command (nothing is inherited). Default: PATH only. */
  env?: Record<string, string>;
  /** Working directory inside. Default "/". */
  cwd?: string;
  /** Hostname inside the UTS namespace. Default "castle". */
  hostname?: string;
  /** uid/gid the command runs as inside. Default 0 (mapped to the caller outside). */
  uid?: number;
  gid?: number;
  /** "none" (default): a private network namespace with only `lo`, up. "host": share the host's. */
  network?: "none" | "host";
  /** Overlay implementation. Default "auto": kernel overlayfs, else fuse-overlayfs. */
  overlay?: OverlayDriver;
  /** Give the command a pseudo-terminal relayed to the caller's terminal (job control works). */
  tty?: boolean;
  /** Resource limits for the command: a number sets soft and hard, a pair sets them apart. */
  rlimits?: Partial<Record<RlimitName, number | [soft: number, hard: number]>>;
  /** Capabilities kept in the bounding set, e.g. ["CAP_CHOWN"]. Default: a small build set. */
  keepCaps?: string[];
  /**
   * cgroup directories (host paths: one v2 dir, or one per v1 hierarchy) that the sandbox's init
   * joins before anything runs inside, so their limits cover every process in the sandbox; they
   * become the root of its cgroup namespace. At most 8. Default: none (see `limits`).
   */
  cgroups?: string[];
  /** Size of the sandbox's /tmp (a tmpfs). Default: the kernel's, half of RAM (see `limits`). */
  tmpSizeBytes?: number;
  /**
   * Limits for the whole sandbox, which `spawn` enforces the best way this caller may: a cgroup
   * of its own per controller when Castle may create one (cgroup v2 delegated to the caller, or a
   * v1 hierarchy it can write, as root can), else an rlimit standing in (see {@link ResourceLimits}).
   * What could not be enforced is in the process's `limits.unenforced`. Default: none.
   */
  limits?: ResourceLimits;
}

/** Limits for a whole sandbox (see `SandboxSpec.limits`). */
export interface ResourceLimits {
  /** Processes and threads at once (cgroup pids; stand-in: RLIMIT_NPROC per process's user). */
  pids?: number;
  /** Memory in bytes (cgroup memory, v1 also capping swap; stand-in: RLIMIT_AS per process). */
  memoryBytes?: number;
  /** CPU time as a number of CPUs, e.g. 0.5 (cgroup cpu quota; no stand-in). */
  cpus?: number;
  /** Size of /tmp in bytes (its tmpfs's size; always enforced). */
  tmpBytes?: number;
  /**
   * Which limits an rlimit may stand in for when no cgroup can enforce them. Default both
   * ["pids", "memory"]; RLIMIT_AS counts address space, which some programs reserve far beyond
   * what they use, so a default memory limit is better left unenforced than enforced that way.
   */
  standIns?: ("pids" | "memory")[];
}

/** A limit of {@link ResourceLimits}, by name. */
export type LimitName = "pids" | "memory" | "cpus" | "tmp";

/** How `spawn` enforced a sandbox's `limits` for this caller. */
export interface EnforcedLimits {
  /** The cgroup dirs the sandbox joined (pass them to `enter` so its commands count too). */
  cgroups: string[];
  /** The rlimits standing in for limits no cgroup enforces (pass them to `enter` too). */
  rlimits?: SandboxSpec["rlimits"];
  /** Limits no cgroup could enforce here: each with its stand-in (if any) and why. */
  unenforced: { limit: Exclude<LimitName, "tmp">; value: number; standIn?: "RLIMIT_NPROC" | "RLIMIT_AS"; why: string }[];
}

/** Reported once the command has started inside the sandbox. */
export interface SandboxStarted {
  /** Host pid of the sandbox's init (pid 1 inside); its /proc/<pid>/ns/* name the namespaces. */
  initPid: number;
  /** Which overlay implementation built the root: "kernel" or "fuse". */
  overlay: "kernel" | "fuse";
}

/** How the command ended. `code` follows shell convention: the exit status, or 128+signal. */
export interface SandboxExit {
  code: number;
  signal?: NodeJS.Signals;
  /**
   * A limit the sandbox ran into, when a failed command most likely died of it: its pids cgroup
   * refused a fork, its memory cgroup killed a process, or /tmp was full when it ended.
   */
  limitHit?: { limit: LimitName; value?: number };
}

/** A running sandbox to enter: the `initPid` its `started` reported (host pid of its init). */
export interface EnterTarget {
  initPid: number;
}

/**
 * A command to run inside a running sandbox. Its filesystem, hostname and network are the
 * sandbox's; the command gets the same hardening as a sandbox's own command (own session,
 * dropped capabilities, no_new_privs, seccomp, a fresh session keyring, only fds 0-2).
 */
export interface EnterSpec {
  /** Command and arguments; argv[0] is looked up in PATH from `env` when it has no slash. */
  argv: string[];
  /** The whole environment of the command (nothing is inherited). Default: PATH only. */
  env?: Record<string, string>;
  /** Working directory inside. Default "/". */
  cwd?: string;
  /** uid/gid inside; non-zero ones need the sandbox to map a subordinate range. Default 0. */
  uid?: number;
  gid?: number;
  /** A pseudo-terminal from the sandbox's own /dev/pts, relayed to the caller's terminal. */
  tty?: boolean;
  /** Resource limits, as in {@link SandboxSpec.rlimits}. */
  rlimits?: SandboxSpec["rlimits"];
  /** Capabilities kept in the bounding set. Default: the same small build set as `spawn`. */
  keepCaps?: string[];
  /** The cgroup dirs the sandbox was started with, so its limits cover the command too. Default: none. */
  cgroups?: string[];
}

/** Reported once an entered command has started. */
export interface EnterStarted {
  /** Host pid of the sandbox's init (the target). */
  initPid: number;
  /** Host pid of the entered command. */
  pid: number;
}
