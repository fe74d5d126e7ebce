// Owns --memory, --pids and --cpus: a child cgroup (v2) when the user's cgroup is delegated and
// has the controllers, otherwise rlimits where one can stand in (memory → RLIMIT_AS, pids →
// RLIMIT_NPROC), with a clear note of what could not be applied.

import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SandboxSpec } from "@castle/sandbox";
import { UsageError } from "./usage-error";

export interface ResourceLimits {
  memoryBytes?: number;
  pids?: number;
  cpus?: number;
}

export interface AppliedLimits {
  /** A cgroup directory the sandbox should join before it starts its command. */
  cgroup?: string;
  rlimits?: SandboxSpec["rlimits"];
  /** What could not be applied, and why — printed as warnings. */
  notes: string[];
  release?(): void;
}

/** "512M", "2G", "1048576" → bytes. */
export function parseBytes(text: string, flag: string, command?: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(text.trim());
  if (!m) throw new UsageError(`${flag} takes a size like 512M or 2G, got "${text}"`, command);
  const scale = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2]!.toLowerCase() as "" | "k" | "m" | "g" | "t"];
  return Math.floor(Number(m[1]) * scale);
}

export function parseLimits(values: { memory?: string; pids?: string; cpus?: string }, command: string): ResourceLimits {
  const out: ResourceLimits = {};
  if (values.memory !== undefined) out.memoryBytes = parseBytes(values.memory, "--memory", command);
  if (values.pids !== undefined) {
    out.pids = Number(values.pids);
    if (!Number.isInteger(out.pids) || out.pids < 1) throw new UsageError(`--pids takes a positive integer, got "${values.pids}"`, command);
  }
  if (values.cpus !== undefined) {
    out.cpus = Number(values.cpus);
    if (!(out.cpus > 0)) throw new UsageError(`--cpus takes a positive number, got "${values.cpus}"`, command);
  }
  return out;
}

/** Our own cgroup v2 directory, if the unified hierarchy is mounted and we can see it. */
export function ownCgroup(): string | undefined {
  try {
    const line = readFileSync("/proc/self/cgroup", "utf8").split("\n").find((l) => l.startsWith("0::"));
    if (!line) return undefined;
    const mount = readFileSync("/proc/self/mountinfo", "utf8").split("\n").find((l) => l.includes(" - cgroup2 "));
    if (!mount) return undefined;
    const mountPoint = mount.split(" ")[4]!;
    return join(mountPoint, line.slice(3));
  } catch {
    return undefined;
  }
}

export function applyResourceLimits(limits: ResourceLimits): AppliedLimits {
  if (limits.memoryBytes === undefined && limits.pids === undefined && limits.cpus === undefined) return { notes: [] };
  const wanted = [
    ...(limits.memoryBytes !== undefined ? ["memory"] : []),
    ...(limits.pids !== undefined ? ["pids"] : []),
    ...(limits.cpus !== undefined ? ["cpu"] : []),
  ];
  const parent = ownCgroup();
  const why = parent ? cgroupProblem(parent, wanted) : "no cgroup v2 hierarchy is mounted";
  if (parent && !why) {
    const dir = join(parent, `castle-${process.pid}-${Date.now().toString(36)}`);
    try {
      mkdirSync(dir);
      if (limits.memoryBytes !== undefined) writeFileSync(join(dir, "memory.max"), String(limits.memoryBytes));
      if (limits.pids !== undefined) writeFileSync(join(dir, "pids.max"), String(limits.pids));
      if (limits.cpus !== undefined) writeFileSync(join(dir, "cpu.max"), `${Math.round(limits.cpus * 100000)} 100000`);
      return { cgroup: dir, notes: [], release: () => rmdirQuiet(dir) };
    } catch (error) {
      rmdirQuiet(dir);
      return fallback(limits, `cannot create a cgroup under ${parent}: ${(error as Error).message}`);
    }
  }
  return fallback(limits, why ?? "unknown");
}

function cgroupProblem(dir: string, wanted: string[]): string | undefined {
  try {
    const enabled = readFileSync(join(dir, "cgroup.subtree_control"), "utf8").trim().split(/\s+/);
    const missing = wanted.filter((c) => !enabled.includes(c));
    if (missing.length) return `the ${missing.join(", ")} controller(s) are not delegated to ${dir}`;
    return existsSync(join(dir, "cgroup.procs")) ? undefined : `${dir} is not a cgroup v2 directory`;
  } catch (error) {
    return `cannot read ${dir}/cgroup.subtree_control: ${(error as Error).message}`;
  }
}

function fallback(limits: ResourceLimits, why: string): AppliedLimits {
  const notes = [`resource limits via cgroups are unavailable: ${why}`];
  const rlimits: NonNullable<SandboxSpec["rlimits"]> = {};
  if (limits.memoryBytes !== undefined) {
    rlimits.as = limits.memoryBytes;
    notes.push("--memory is applied as an address-space rlimit per process (RLIMIT_AS), not a total");
  }
  if (limits.pids !== undefined) {
    rlimits.nproc = limits.pids;
    notes.push("--pids is applied as RLIMIT_NPROC, which counts all processes of your user");
  }
  if (limits.cpus !== undefined) notes.push("--cpus cannot be applied without a cgroup; it is ignored");
  return { rlimits, notes };
}

function rmdirQuiet(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // Still busy or already gone: the kernel removes nothing by itself, but an empty cgroup is harmless.
  }
}
