// Owns turning a sandbox's `limits` into what enforces them for this caller: a cgroup of the
// sandbox's own per hierarchy when Castle may create one there (cgroup v2 delegated to it, or a
// v1 hierarchy it can write, as root can), else an rlimit standing in where one can (pids →
// RLIMIT_NPROC, memory → RLIMIT_AS), and /tmp's size; after the sandbox, which limit a failed
// command ran into, and the cgroups removed.

import { controllerHome, createCgroup, hasControl, readCounter, removeCgroup, writeControl, type Controller } from "./cgroups";
import type { EnforcedLimits, LimitName, ResourceLimits, SandboxExit, SandboxSpec } from "./types";

/** Limits resolved for one sandbox. */
export interface AppliedLimits extends EnforcedLimits {
  /** The spec with the cgroups, rlimits and /tmp size that enforce the limits. */
  spec: SandboxSpec;
  /** The limit a command that failed most likely ran into, if any. */
  hit(exit: SandboxExit): SandboxExit["limitHit"];
  /** Removes the sandbox's cgroups (after it has exited). */
  release(): Promise<void>;
}

const CPU_PERIOD_US = 100_000;

/**
 * Resolves `spec.limits` for a helper running as `owner` (default: this process's user).
 *
 * @example
 * const applied = applyLimits({ root: { lowers: [rootfs] }, argv: ["/bin/sh"], limits: { pids: 64 } });
 * // applied.spec.cgroups: ["/sys/fs/cgroup/pids/castle-4242-0"] as root on cgroup v1;
 * // for another user: applied.spec.rlimits.nproc === 64, applied.unenforced[0].standIn === "RLIMIT_NPROC"
 */
export function applyLimits(spec: SandboxSpec, owner?: { uid: number; gid: number }): AppliedLimits {
  const limits: ResourceLimits = spec.limits ?? {};
  const uid = owner?.uid ?? process.getuid?.() ?? -1;
  const standIns = new Set(limits.standIns ?? ["pids", "memory"]);
  const wanted: { controller: Controller; limit: Exclude<LimitName, "tmp">; value: number }[] = [];
  if (limits.pids !== undefined) wanted.push({ controller: "pids", limit: "pids", value: limits.pids });
  if (limits.memoryBytes !== undefined) wanted.push({ controller: "memory", limit: "memory", value: limits.memoryBytes });
  if (limits.cpus !== undefined) wanted.push({ controller: "cpu", limit: "cpus", value: limits.cpus });

  const dirs = new Map<string, string>(); // hierarchy dir (parent) → this sandbox's dir in it
  const placed: { controller: Controller; version: 1 | 2; dir: string }[] = [];
  /** Puts one limit in this sandbox's cgroup of the controller's hierarchy, or says why not. */
  const place = (controller: Controller, value: number): { why: string } | undefined => {
    const home = controllerHome(controller, uid);
    if ("why" in home) return home;
    let dir = dirs.get(home.dir);
    if (dir === undefined) {
      const made = createCgroup(home.dir, owner);
      if (typeof made !== "string") return made;
      dirs.set(home.dir, (dir = made));
    }
    try {
      writeLimit(dir, home.version, controller, value);
    } catch (error) {
      return { why: `cannot set ${controller} in ${dir}: ${(error as Error).message}` };
    }
    placed.push({ controller, version: home.version, dir });
    return undefined;
  };

  const unenforced: EnforcedLimits["unenforced"] = [];
  const rlimits: NonNullable<SandboxSpec["rlimits"]> = { ...spec.rlimits };
  for (const { controller, limit, value } of wanted) {
    const problem = place(controller, value);
    if (!problem) continue;
    if (limit === "pids" && standIns.has("pids")) {
      rlimits.nproc = value;
      unenforced.push({ limit, value, standIn: "RLIMIT_NPROC", why: problem.why });
    } else if (limit === "memory" && standIns.has("memory")) {
      rlimits.as = value;
      unenforced.push({ limit, value, standIn: "RLIMIT_AS", why: problem.why });
    } else {
      unenforced.push({ limit, value, why: problem.why });
    }
  }
  const cgroups = [...dirs.values()].filter((dir) => placed.some((p) => p.dir === dir));
  for (const dir of dirs.values()) if (!cgroups.includes(dir)) void removeCgroup(dir, 0);

  const resolved: SandboxSpec = { ...spec };
  delete resolved.limits;
  if (cgroups.length > 0) resolved.cgroups = [...(spec.cgroups ?? []), ...cgroups];
  if (Object.keys(rlimits).length > 0) resolved.rlimits = rlimits;
  if (limits.tmpBytes !== undefined) resolved.tmpSizeBytes = limits.tmpBytes;

  return {
    spec: resolved,
    cgroups,
    unenforced,
    hit: (exit) => limitHit(exit, placed, limits),
    release: async () => {
      await Promise.all(cgroups.map((dir) => removeCgroup(dir)));
    },
  };
}

function writeLimit(dir: string, version: 1 | 2, controller: Controller, value: number): void {
  if (controller === "pids") {
    writeControl(dir, "pids.max", String(value));
  } else if (controller === "memory" && version === 2) {
    writeControl(dir, "memory.max", String(value));
  } else if (controller === "memory") {
    writeControl(dir, "memory.limit_in_bytes", String(value));
    // With swap accounting, memory+swap gets the same cap: swapping is no way around it.
    if (hasControl(dir, "memory.memsw.limit_in_bytes")) writeControl(dir, "memory.memsw.limit_in_bytes", String(value));
  } else if (version === 2) {
    writeControl(dir, "cpu.max", `${Math.max(1000, Math.round(value * CPU_PERIOD_US))} ${CPU_PERIOD_US}`);
  } else {
    writeControl(dir, "cpu.cfs_period_us", String(CPU_PERIOD_US));
    writeControl(dir, "cpu.cfs_quota_us", String(Math.max(1000, Math.round(value * CPU_PERIOD_US))));
  }
}

/** Memory first (its OOM kill ends a command outright), then pids, then what the helper saw. */
function limitHit(exit: SandboxExit, placed: { controller: Controller; version: 1 | 2; dir: string }[], limits: ResourceLimits): SandboxExit["limitHit"] {
  if (exit.code === 0) return undefined;
  const memory = placed.find((p) => p.controller === "memory");
  if (memory && readCounter(memory.dir, memory.version === 2 ? "memory.events" : "memory.oom_control", "oom_kill") > 0) {
    return { limit: "memory", value: limits.memoryBytes! };
  }
  const pids = placed.find((p) => p.controller === "pids");
  if (pids && readCounter(pids.dir, "pids.events", "max") > 0) return { limit: "pids", value: limits.pids! };
  // What the helper saw: /tmp full, or as many tasks as RLIMIT_NPROC allows.
  if (exit.limitHit?.limit === "tmp" && limits.tmpBytes !== undefined) return { limit: "tmp", value: limits.tmpBytes };
  if (exit.limitHit?.limit === "pids" && limits.pids !== undefined) return { limit: "pids", value: limits.pids };
  return exit.limitHit;
}

/**
 * One line for a warning: which limits no cgroup enforces for this caller, what stands in, and
 * why — e.g. "pids 64 holds only as RLIMIT_NPROC, cpus 0.5 not at all: no cgroup for them here
 * (/sys/fs/cgroup/pids is not writable by uid 1000)". `names` renames limits (e.g. to flags).
 */
export function describeUnenforced(unenforced: EnforcedLimits["unenforced"], names: Partial<Record<LimitName, string>> = {}): string | undefined {
  if (unenforced.length === 0) return undefined;
  const parts = unenforced.map((u, i) => {
    const shown = `${names[u.limit] ?? u.limit} ${u.limit === "memory" ? formatBytes(u.value) : u.value}`;
    const only = i === 0 ? "holds only " : "only ";
    if (u.standIn === "RLIMIT_AS") return `${shown} ${only}as RLIMIT_AS (address space per process, not a total)`;
    if (u.standIn === "RLIMIT_NPROC") return `${shown} ${only}as RLIMIT_NPROC`;
    return `${shown} not at all`;
  });
  const whys = [...new Set(unenforced.map((u) => u.why))];
  return `${parts.join(", ")}: no cgroup for them here (${whys.join("; ")})`;
}

/** 1536 → "1.5K", 536870912 → "512M": the same units the flags take. */
export function formatBytes(bytes: number): string {
  const units = ["", "K", "M", "G", "T"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)}${units[unit]}`;
}

/**
 * "512M", "2G", "1.5g", "1048576" (bytes; K M G T are powers of 1024, "i" and "B" may follow) → bytes, or undefined when the text is no size.
 *
 * @example
 * parseSize("512M"); // 536870912
 * parseSize("lots"); // undefined
 */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(text.trim());
  if (!m) return undefined;
  const scale = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2]!.toLowerCase() as "" | "k" | "m" | "g" | "t"];
  return Math.floor(Number(m[1]) * scale);
}
