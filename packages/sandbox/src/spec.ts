// Owns the spec on its way to the helper: validation (every field, before any process starts)
// and serialisation into the helper's wire format, documented in helper/spec.c:
// "castle-sandbox-spec/1", then ops, each a keyword and a fixed shape of NUL-terminated strings.

import { SandboxSpecError } from "./errors";
import type { EnterSpec, EnterTarget, MountSpec, OverlaySpec, ResourceLimits, RlimitName, SandboxSpec } from "./types";

/** Limits shared with the helper (it enforces the same numbers). */
export const SPEC_LIMITS = {
  lowers: 500,
  env: 4096,
  argv: 4096,
  mounts: 1024,
  bytes: 1024 * 1024,
  cgroups: 8,
} as const;

/**
 * The host uid and gid that root inside a sandbox runs as when real root starts it (helper
 * SHIFT_ID, see helper/shift.c): an id no user has, so root inside is not host root.
 */
export const ROOT_CALLER_ID = 2091188224;

export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const SPEC_HEADER = "castle-sandbox-spec/1";
const RLIMIT_NAMES: readonly RlimitName[] = ["as", "core", "cpu", "data", "fsize", "memlock", "nofile", "nproc", "stack"];
const CAP_NAMES = new Set([
  "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
  "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
  "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
  "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
  "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
  "CHECKPOINT_RESTORE",
].map((name) => `CAP_${name}`));

function fail(field: string, message: string): never {
  throw new SandboxSpecError(field, message);
}

function checkString(value: unknown, field: string): string {
  if (typeof value !== "string") fail(field, `must be a string, got ${typeof value}`);
  if (value.includes("\0")) fail(field, "must not contain NUL bytes");
  return value;
}

function checkHostPath(value: unknown, field: string): void {
  const path = checkString(value, field);
  if (!path.startsWith("/")) fail(field, `"${path}" is not an absolute path`);
  if (path.length >= 4000) fail(field, "is longer than 4000 bytes");
}

/** Paths inside the sandbox: absolute, without "." or ".." components. */
function checkSandboxPath(value: unknown, field: string): void {
  checkHostPath(value, field);
  if ((value as string).split("/").some((part) => part === "." || part === ".."))
    fail(field, `"${value as string}" must not contain "." or ".." components`);
}

function checkOverlay(overlay: OverlaySpec, field: string): void {
  if (!Array.isArray(overlay.lowers) || overlay.lowers.length === 0) fail(`${field}.lowers`, "needs at least one lower");
  if (overlay.lowers.length > SPEC_LIMITS.lowers)
    fail(`${field}.lowers`, `has ${overlay.lowers.length} lowers; at most ${SPEC_LIMITS.lowers} are supported`);
  overlay.lowers.forEach((lower, i) => checkHostPath(lower, `${field}.lowers[${i}]`));
  if ((overlay.upper === undefined) !== (overlay.work === undefined))
    fail(overlay.upper === undefined ? `${field}.upper` : `${field}.work`, "upper and work go together");
  if (overlay.upper !== undefined) {
    checkHostPath(overlay.upper, `${field}.upper`);
    checkHostPath(overlay.work, `${field}.work`);
  }
  if (overlay.volatile && overlay.upper === undefined) fail(`${field}.volatile`, "needs an upper");
}

function checkId(value: unknown, field: string): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) >= 2 ** 32 - 1)
    fail(field, `must be an integer id, got ${String(value)}`);
}

function checkLimit(value: unknown, field: string): void {
  if (value === Infinity) return;
  if (!Number.isSafeInteger(value) || (value as number) < 0) fail(field, `must be a non-negative integer or Infinity, got ${String(value)}`);
}

function checkMount(mount: MountSpec, field: string): void {
  checkSandboxPath(mount.target, `${field}.target`);
  if (mount.target === "/") fail(`${field}.target`, 'cannot be "/" (that is the root)');
  switch (mount.type) {
    case "bind":
      checkHostPath(mount.source, `${field}.source`);
      break;
    case "overlay":
      checkOverlay(mount, field);
      break;
    case "tmpfs":
      if (mount.sizeBytes !== undefined) checkLimit(mount.sizeBytes, `${field}.sizeBytes`);
      if (mount.mode !== undefined && (!Number.isInteger(mount.mode) || mount.mode < 0 || mount.mode > 0o7777))
        fail(`${field}.mode`, "must be a mode in 0..0o7777");
      break;
    default:
      fail(`${field}.type`, `unknown mount type "${String((mount as { type?: unknown }).type)}"`);
  }
}

/** The fields a sandbox's command and an entered command share. */
function checkCommand(spec: EnterSpec): void {
  if (!Array.isArray(spec.argv) || spec.argv.length === 0) fail("argv", "must be a non-empty array");
  if (spec.argv.length > SPEC_LIMITS.argv) fail("argv", `has more than ${SPEC_LIMITS.argv} entries`);
  spec.argv.forEach((arg, i) => checkString(arg, `argv[${i}]`));
  if (spec.argv[0] === "") fail("argv[0]", "must not be empty");
  const env = Object.entries(spec.env ?? {});
  if (env.length > SPEC_LIMITS.env) fail("env", `has more than ${SPEC_LIMITS.env} entries`);
  for (const [key, value] of env) {
    if (key === "" || key.includes("=") || key.includes("\0")) fail(`env.${key}`, "is not a valid variable name");
    checkString(value, `env.${key}`);
  }
  if (spec.cwd !== undefined) checkSandboxPath(spec.cwd, "cwd");
  checkId(spec.uid, "uid");
  checkId(spec.gid, "gid");
  for (const [name, value] of Object.entries(spec.rlimits ?? {})) {
    if (!RLIMIT_NAMES.includes(name as RlimitName)) fail(`rlimits.${name}`, "is not a known rlimit");
    const [soft, hard] = Array.isArray(value) ? value : [value, value];
    checkLimit(soft, `rlimits.${name}`);
    checkLimit(hard, `rlimits.${name}`);
    if ((soft as number) > (hard as number)) fail(`rlimits.${name}`, "soft limit is above the hard limit");
  }
  (spec.keepCaps ?? []).forEach((cap, i) => {
    if (!CAP_NAMES.has(cap)) fail(`keepCaps[${i}]`, `"${cap}" is not a capability name like CAP_CHOWN`);
  });
  if (spec.cgroups !== undefined) {
    if (!Array.isArray(spec.cgroups)) fail("cgroups", "must be an array of cgroup dirs");
    if (spec.cgroups.length > SPEC_LIMITS.cgroups) fail("cgroups", `has more than ${SPEC_LIMITS.cgroups} dirs`);
    spec.cgroups.forEach((dir, i) => checkHostPath(dir, `cgroups[${i}]`));
  }
}

function checkLimits(limits: ResourceLimits): void {
  if (limits === null || typeof limits !== "object") fail("limits", "must be an object");
  for (const key of ["pids", "memoryBytes", "tmpBytes"] as const) {
    const value = limits[key];
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) fail(`limits.${key}`, `must be a positive integer, got ${String(value)}`);
  }
  if (limits.cpus !== undefined && !(typeof limits.cpus === "number" && limits.cpus > 0 && limits.cpus < 1e6))
    fail("limits.cpus", `must be a positive number of CPUs, got ${String(limits.cpus)}`);
  for (const name of limits.standIns ?? []) if (name !== "pids" && name !== "memory") fail("limits.standIns", `"${String(name)}" has no stand-in`);
}

/**
 * Checks every field of a spec, throwing a {@link SandboxSpecError} (code CASTLE_SANDBOX_SPEC)
 * whose `data.field` names the first bad one.
 *
 * @example
 * validateSpec({ root: { lowers: ["/srv/rootfs"] }, argv: ["/bin/true"] }); // ok
 * validateSpec({ root: { lowers: ["rootfs"] }, argv: ["/bin/true"] });      // throws: root.lowers[0]
 */
export function validateSpec(spec: SandboxSpec): void {
  if (spec === null || typeof spec !== "object") fail("spec", "must be an object");
  if (spec.root === undefined) fail("root", "is required");
  checkOverlay(spec.root, "root");
  checkCommand(spec);
  if (spec.hostname !== undefined) {
    checkString(spec.hostname, "hostname");
    if (spec.hostname.length === 0 || Buffer.byteLength(spec.hostname) > 64) fail("hostname", "must be 1..64 bytes");
  }
  if (spec.network !== undefined && spec.network !== "none" && spec.network !== "host")
    fail("network", `must be "none" or "host", got ${String(spec.network)}`);
  if (spec.overlay !== undefined && !["auto", "kernel", "fuse"].includes(spec.overlay))
    fail("overlay", `must be "auto", "kernel" or "fuse", got ${String(spec.overlay)}`);
  if (spec.tmpSizeBytes !== undefined) checkLimit(spec.tmpSizeBytes, "tmpSizeBytes");
  if (spec.limits !== undefined) checkLimits(spec.limits);
  const mounts = spec.mounts ?? [];
  if (mounts.length > SPEC_LIMITS.mounts) fail("mounts", `has more than ${SPEC_LIMITS.mounts} mounts`);
  mounts.forEach((mount, i) => checkMount(mount, `mounts[${i}]`));
}

function limitText(value: number): string {
  return value === Infinity ? "inf" : String(value);
}

/**
 * The helper's wire format for a valid spec (call {@link validateSpec} first).
 *
 * @example
 * const bytes = serializeSpec({ root: { lowers: ["/srv/rootfs"] }, argv: ["/bin/sh", "-c", "echo hi"] });
 * // "castle-sandbox-spec/1\0argv\0003\0/bin/sh\0-c\0echo hi\0env\0PATH=...\0lower\0/srv/rootfs\0"
 */
export function serializeSpec(spec: SandboxSpec): Buffer {
  const { out, op } = commandOps(spec);
  for (const lower of spec.root.lowers) op("lower", lower);
  if (spec.root.upper !== undefined && spec.root.work !== undefined) op("upper", spec.root.upper, spec.root.work);
  for (const mount of spec.mounts ?? []) {
    if (mount.type === "bind") op("bind", mount.source, mount.target, mount.readonly ? "ro" : "rw");
    else if (mount.type === "overlay")
      op("overlay", mount.target, mount.lowers.length, ...mount.lowers, mount.upper ?? "", mount.work ?? "");
    else op("tmpfs", mount.target, mount.sizeBytes ?? 0, (mount.mode ?? 0o755).toString(8));
  }
  if (spec.hostname !== undefined) op("hostname", spec.hostname);
  op("net", spec.network ?? "none");
  if (spec.overlay !== undefined) op("overlay-driver", spec.overlay);
  if (spec.tmpSizeBytes !== undefined && spec.tmpSizeBytes !== Infinity) op("tmp-size", spec.tmpSizeBytes);
  if (spec.root.volatile) op("volatile", "/");
  for (const mount of spec.mounts ?? []) if (mount.type === "overlay" && mount.volatile) op("volatile", mount.target);
  return finish(out);
}

/** The header and the ops a sandbox's command and an entered command share. */
function commandOps(spec: EnterSpec): { out: string[]; op: (...parts: (string | number)[]) => void } {
  const out: string[] = [SPEC_HEADER];
  const op = (...parts: (string | number)[]) => {
    for (const part of parts) out.push(String(part));
  };
  op("argv", spec.argv.length, ...spec.argv);
  for (const [key, value] of Object.entries(spec.env ?? { PATH: DEFAULT_PATH })) op("env", `${key}=${value}`);
  if (spec.cwd !== undefined) op("cwd", spec.cwd);
  if (spec.uid !== undefined) op("uid", spec.uid);
  if (spec.gid !== undefined) op("gid", spec.gid);
  if (spec.tty) op("tty");
  for (const [name, value] of Object.entries(spec.rlimits ?? {})) {
    const [soft, hard] = Array.isArray(value) ? value : [value, value];
    op("rlimit", name, limitText(soft), limitText(hard));
  }
  if (spec.keepCaps !== undefined) op("keep-caps", spec.keepCaps.length, ...spec.keepCaps);
  for (const dir of spec.cgroups ?? []) op("cgroup", dir);
  return { out, op };
}

function finish(out: string[]): Buffer {
  const bytes = Buffer.from(`${out.join("\0")}\0`, "utf8");
  if (bytes.length > SPEC_LIMITS.bytes) fail("spec", `serialises to ${bytes.length} bytes; at most ${SPEC_LIMITS.bytes} are allowed`);
  return bytes;
}

/**
 * Checks an `enter` target and command, throwing a {@link SandboxSpecError} naming the first bad field.
 *
 * @example
 * validateEnterSpec({ initPid: 4242 }, { argv: ["/bin/sh"] }); // ok
 * validateEnterSpec({ initPid: 0 }, { argv: ["/bin/sh"] });    // throws: target.initPid
 */
export function validateEnterSpec(target: EnterTarget, spec: EnterSpec): void {
  if (target === null || typeof target !== "object") fail("target", "must be an object with initPid");
  if (!Number.isInteger(target.initPid) || target.initPid < 1 || target.initPid > 4194304)
    fail("target.initPid", `must be a pid (an integer in 1..4194304), got ${String(target.initPid)}`);
  if (spec === null || typeof spec !== "object") fail("spec", "must be an object");
  checkCommand(spec);
}

/**
 * The helper's wire format for entering a running sandbox: the command's ops plus `enter <pid>`.
 *
 * @example
 * serializeEnterSpec({ initPid: 4242 }, { argv: ["/bin/sh"] });
 * // "castle-sandbox-spec/1\0argv\0001\0/bin/sh\0env\0PATH=...\0enter\0004242\0"
 */
export function serializeEnterSpec(target: EnterTarget, spec: EnterSpec): Buffer {
  const { out, op } = commandOps(spec);
  op("enter", target.initPid);
  return finish(out);
}
