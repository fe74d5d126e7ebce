// Owns `castle run --mount HOST:GUEST[:ro]` (docker's -v habit): parsing, and every check that
// can be made before anything is built — the host path exists, the guest path is absolute and
// not the sandbox's own /proc, /dev or /sys, no two mounts share a guest path, and none overlaps
// Castle's own mounts in the system. Each problem is a usage error (exit 2) saying what to write.

import { statSync } from "node:fs";
import { posix, resolve } from "node:path";
import { UsageError } from "../context/usage-error";

export interface UserMount {
  /** Absolute host path (resolved against the current directory). */
  host: string;
  /** Normalised absolute path inside the system. */
  guest: string;
  readonly: boolean;
  /** A directory (else a file: the mount point is a file too). */
  isDir: boolean;
}

/** A path Castle itself mounts in the system, with what it is for (for the error message). */
export interface ReservedPath {
  path: string;
  what: string;
}

/** The sandbox's own filesystems: never a place for a user mount. */
const SANDBOX_PATHS: ReservedPath[] = [
  { path: "/proc", what: "the sandbox's own /proc" },
  { path: "/dev", what: "the sandbox's own /dev" },
  { path: "/sys", what: "the kernel's /sys" },
];

export function parseMountFlags(values: string[] | undefined, command: string, cwd = process.cwd()): UserMount[] {
  const mounts = (values ?? []).map((value) => parseMountFlag(value, command, cwd));
  const seen = new Map<string, string>();
  for (const [i, m] of mounts.entries()) {
    const earlier = seen.get(m.guest);
    if (earlier !== undefined) throw new UsageError(`--mount ${values![i]}: ${m.guest} is already the target of --mount ${earlier}`, command);
    seen.set(m.guest, values![i]!);
  }
  // Parents first, so a mount inside another user mount lands on top of it.
  return mounts.sort((a, b) => a.guest.split("/").length - b.guest.split("/").length);
}

function parseMountFlag(value: string, command: string, cwd: string): UserMount {
  const parts = value.split(":");
  let readonly = false;
  if (parts.length === 3 && (parts[2] === "ro" || parts[2] === "rw")) {
    readonly = parts.pop() === "ro";
  } else if (parts.length === 3) {
    throw new UsageError(`--mount ${value}: unknown option "${parts[2]}" (write HOST:GUEST, HOST:GUEST:ro or HOST:GUEST:rw)`, command);
  }
  if (parts.length !== 2 || !parts[0] || !parts[1]) {
    throw new UsageError(`--mount takes HOST:GUEST[:ro], got "${value}"`, command);
  }
  const [hostPart, guestPart] = parts as [string, string];
  if (!guestPart.startsWith("/")) {
    throw new UsageError(`--mount ${value}: the guest path ${guestPart} must be absolute (it is a path inside the system, e.g. /data)`, command);
  }
  const guest = posix.normalize(guestPart).replace(/\/+$/, "");
  if (guest === "" || guest.split("/").includes("..")) {
    throw new UsageError(`--mount ${value}: cannot mount over the system's root; give a directory inside it, e.g. /data`, command);
  }
  for (const reserved of SANDBOX_PATHS) {
    if (overlaps(guest, reserved.path)) throw new UsageError(`--mount ${value}: ${guest} is ${reserved.what}; mount somewhere else`, command);
  }
  const host = resolve(cwd, hostPart);
  let isDir: boolean;
  try {
    isDir = statSync(host).isDirectory();
  } catch {
    throw new UsageError(`--mount ${value}: ${host} does not exist on the host (or cannot be read)`, command);
  }
  return { host, guest, readonly, isDir };
}

/** Rejects a user mount at, inside or above one of Castle's own mounts. */
export function checkReservedOverlaps(mounts: UserMount[], reserved: ReservedPath[], command: string): void {
  for (const m of mounts) {
    for (const r of reserved) {
      if (!overlaps(m.guest, r.path)) continue;
      throw new UsageError(
        `--mount ${m.host}:${m.guest}: ${m.guest} overlaps ${r.path}, ${r.what}; mount somewhere else (or run with --no-castle)`,
        command,
      );
    }
  }
}

/** True when a and b are the same path or one is inside the other. */
export function overlaps(a: string, b: string): boolean {
  return a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
}
