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
   * A cgroup v2 directory (host path, owned by the caller) that the sandbox's init joins before
   * anything runs inside, so its limits cover every process in the sandbox. Default: none.
   */
  cgroup?: string;
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
  /** The cgroup dir the sandbox was started with, so its limits cover the command too. Default: none. */
  cgroup?: string;
}

/** Reported once an entered command has started. */
export interface EnterStarted {
  /** Host pid of the sandbox's init (the target). */
  initPid: number;
  /** Host pid of the entered command. */
  pid: number;
}
