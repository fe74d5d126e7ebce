// Test helper for the sandbox reliability suites (sandbox-escape, sandbox-spec-fuzz,
// sandbox-load): a busybox rootfs with the attack program (sandbox-attack.c) compiled static
// into it, the two callers (this process and uid 65534), a leak marker put in every helper's
// environment, and host snapshots that prove nothing was left behind: processes carrying the
// marker, mounts (the host's mountinfo), temp dirs, and this process's open fds.

import { chmodSync, existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileStatic, makeRootfs, tempDir } from "../../../packages/sandbox/test/fixtures";

export { CALLERS, callerMissing, cleanup, hostIdOfRoot, ownedDir, runHelper, support, tempDir, type Caller } from "../../../packages/sandbox/test/fixtures";
export { busyboxMissing } from "../../../packages/sandbox/test/fixtures";

export const ATTACK_SOURCE = join(import.meta.dirname, "sandbox-attack.c");

/** A rootfs (world-readable, in a fresh temp dir) with /bin/attack, or why it could not be built. */
export function attackRootfs(): { base: string; rootfs: string; problem?: string } {
  const base = tempDir("castle-rel-sandbox-");
  const rootfs = makeRootfs(base);
  const problem = compileStatic(readFileSync(ATTACK_SOURCE, "utf8"), join(rootfs, "bin/attack"));
  chmodSync(rootfs, 0o755);
  return { base, rootfs, ...(problem ? { problem } : {}) };
}

/** "name=result" lines of the attack program as an object. */
export function results(stdout: string): Record<string, string> {
  return Object.fromEntries(
    stdout.split("\n").filter((line) => line.includes("=")).map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
}

/**
 * A word every sandbox this process starts carries: the helper inherits it through the
 * environment, and tests put it in the command's env, so a scan of /proc finds anything left.
 */
export const LEAK_MARK = `castle-leak-mark-${process.pid}-${Date.now()}`;
process.env.CASTLE_TEST_LEAK_MARK = LEAK_MARK;

/** Pids (other than ours) whose environment or command line carries the leak mark. */
export function markedProcesses(mark = LEAK_MARK): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    for (const file of ["environ", "cmdline"]) {
      try {
        if (readFileSync(`/proc/${pid}/${file}`, "latin1").includes(mark)) {
          found.push(pid);
          break;
        }
      } catch {
        // gone, or not readable: an unreadable process is not one of ours (we run as root or as its owner)
      }
    }
  }
  return found;
}

/** Describes a process for a failure message. */
export function describeProcess(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim();
    return `${pid} [${stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3)}] ${cmdline}`;
  } catch {
    return `${pid} (gone)`;
  }
}

/** Waits (up to ms) until no marked process is left; returns those still there. */
export async function markedProcessesAfter(ms = 3000, mark = LEAK_MARK): Promise<string[]> {
  let left = markedProcesses(mark);
  for (let waited = 0; left.length > 0 && waited < ms; waited += 25) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    left = markedProcesses(mark);
  }
  return left.map(describeProcess);
}

export interface HostSnapshot {
  mounts: string[];
  tmp: Set<string>;
  fds: number;
}

/** Temp dirs of these suites (fixtures' tempDir prefixes); other tests' temp dirs are not ours. */
const OUR_TEMP_DIRS = /^(castle-rel-sandbox-|castle-rel-fuzz-|castle-rel-load-|castle-sandbox-test-|castle-bench-sandbox)/;

/**
 * Whether a host mount point could be one of ours: anywhere but inside another process's temp
 * dir (other test suites on this machine mount and unmount there while we run).
 */
export function mountIsOurs(mountPoint: string): boolean {
  const tmp = `${tmpdir()}/`;
  if (!mountPoint.startsWith(tmp)) return true;
  return OUR_TEMP_DIRS.test(mountPoint.slice(tmp.length));
}

/** Mount points of the host (this process's mount namespace), with their options. */
function hostMounts(): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => line.split(" ").slice(4, 6))
    .filter(([point]) => mountIsOurs(point ?? ""))
    .map((fields) => fields.join(" "))
    .sort();
}

export function openFds(): number {
  return readdirSync("/proc/self/fd").length;
}

export function snapshot(): HostSnapshot {
  return { mounts: hostMounts(), tmp: new Set(readdirSync(tmpdir())), fds: openFds() };
}

/** Host dirs the helper's base tmpfs may cover (mount.c's candidates). */
const BASE_DIRS = ["/tmp", "/run", "/mnt", "/var/tmp", "/media", "/srv", "/opt", "/home", "/boot"];

/**
 * What changed on the host since `before`: mounts added or removed (outside other processes'
 * temp dirs, see mountIsOurs), and the helper's own dirs
 * (newroot, oldroot, stage, links, scaffold: they live on its base tmpfs, inside the sandbox's
 * mount namespace) showing up in a host dir the base may cover. The helper makes no temp dir of
 * its own, so that is what a setup leaking onto the host would leave; other entries in the
 * shared temp dir belong to other processes and are reported apart.
 */
export function hostChanges(before: HostSnapshot): { mounts: string[]; tmp: string[]; otherTmp: string[] } {
  const now = hostMounts();
  const added = now.filter((m) => !before.mounts.includes(m)).map((m) => `+ ${m}`);
  const removed = before.mounts.filter((m) => !now.includes(m)).map((m) => `- ${m}`);
  const tmp = BASE_DIRS.flatMap((dir) => ["newroot", "oldroot", "stage", "links", "scaffold"].map((name) => join(dir, name))).filter((path) => existsSync(path));
  const otherTmp = readdirSync(tmpdir()).filter((name) => !before.tmp.has(name));
  return { mounts: [...added, ...removed], tmp, otherTmp };
}

/** The target of each fd of this process, for a leak report. */
export function fdTargets(): string[] {
  return readdirSync("/proc/self/fd").map((fd) => {
    try {
      return `${fd} -> ${readlinkSync(`/proc/self/fd/${fd}`)}`;
    } catch {
      return `${fd} (gone)`;
    }
  });
}
