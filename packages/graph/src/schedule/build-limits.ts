// Owns a build's limits: Castle's defaults, a layer's own `limits` over them, and the run's
// overrides (--build-pids, --build-memory, --build-tmp) over both, turned into what the sandbox
// enforces; the line the build log gets about them; and the words that name a limit a failed
// build script ran into. Like job counts, none of this is part of a layer's key.

import { totalmem } from "node:os";
import { formatBytes, type EnforcedLimits, type ResourceLimits, type SandboxExit } from "@castle/sandbox";
import type { BuildLimits } from "../types";

/** The run's overrides of every build's limits (the CLI's --build-* flags). */
export type BuildLimitOverrides = BuildLimits;

/**
 * Castle's defaults for a build (README, "Build limits"): 2048 processes (podman's default
 * pids limit), a 1 GiB /tmp (the kernel's default is half of RAM), and 3/4 of RAM for memory —
 * the latter only where a cgroup can hold it: RLIMIT_AS, the stand-in, counts address space,
 * which runtimes reserve far beyond what they use.
 */
export function defaultBuildLimits(): { pids: number; memory: number; tmp: number } {
  const mib = 2 ** 20;
  return { pids: 2048, memory: Math.floor((totalmem() * 0.75) / mib) * mib, tmp: 2 ** 30 };
}

/** What the sandbox of a layer's build enforces: defaults < the layer's limits < the run's. */
export function resolveBuildLimits(layer: BuildLimits, run: BuildLimitOverrides = {}): ResourceLimits {
  const defaults = defaultBuildLimits();
  const pick = (name: keyof BuildLimits): number | undefined => {
    const value = run[name] ?? layer[name] ?? defaults[name];
    return value === "none" ? undefined : value;
  };
  const memoryAsked = (run.memory ?? layer.memory) !== undefined;
  const limits: ResourceLimits = { standIns: memoryAsked ? ["pids", "memory"] : ["pids"] };
  const pids = pick("pids");
  const memory = pick("memory");
  const tmp = pick("tmp");
  if (pids !== undefined) limits.pids = pids;
  if (memory !== undefined) limits.memoryBytes = memory;
  if (tmp !== undefined) limits.tmpBytes = tmp;
  return limits;
}

/** The build log's line about its limits, e.g. "limits: 2048 processes, memory 12G, /tmp 1G (memory: not enforced, no cgroup: ...)". */
export function describeBuildLimits(limits: ResourceLimits, enforced: EnforcedLimits | undefined): string {
  const parts = [
    limits.pids !== undefined ? `${limits.pids} processes` : "processes unlimited",
    limits.memoryBytes !== undefined ? `memory ${formatBytes(limits.memoryBytes)}` : "memory unlimited",
    limits.tmpBytes !== undefined ? `/tmp ${formatBytes(limits.tmpBytes)}` : "/tmp half of RAM",
  ];
  const how = (enforced?.unenforced ?? []).map((u) => `${u.limit}: ${u.standIn ? `as ${u.standIn}` : "not enforced"}, no cgroup: ${u.why}`);
  return `limits: ${parts.join(", ")}${how.length ? ` (${how.join("; ")})` : ""}`;
}

/** Why a failed build script most likely failed, when it ran into one of its limits. */
export function limitHitMessage(hit: SandboxExit["limitHit"]): string | undefined {
  if (!hit) return undefined;
  const value = hit.value === undefined ? "" : ` (${hit.limit === "pids" ? hit.value : formatBytes(hit.value)})`;
  switch (hit.limit) {
    case "pids":
      return `it reached its limit of processes${value}: raise it with \`limits: { pids }\` on the layer or --build-pids`;
    case "memory":
      return `it went over its memory limit${value}: raise it with \`limits: { memory }\` on the layer or --build-memory`;
    case "tmp":
      return `its /tmp was full${value}: raise it with \`limits: { tmp }\` on the layer or --build-tmp`;
    default:
      return undefined;
  }
}
