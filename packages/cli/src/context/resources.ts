// Owns the limit flags: --memory, --pids and --cpus of `castle run` (the running system's), and
// --build-pids, --build-memory and --build-tmp (every build's, over the layers' own limits).
// Enforcing them is the sandbox's job (cgroups where Castle may create them, else rlimits; see
// @castle/sandbox limits.ts); this module parses them and words the one-line warning.

import type { BuildLimitOverrides } from "@castle/graph";
import { describeUnenforced, parseSize, type EnforcedLimits, type ResourceLimits } from "@castle/sandbox";
import { UsageError } from "./usage-error";

/** "512M", "2G", "1048576" → bytes (0 allowed: `cache prune --max-size 0`). */
export function parseBytes(text: string, flag: string, command?: string): number {
  const bytes = parseSize(text);
  if (bytes === undefined) throw new UsageError(`${flag} takes a size like 512M or 2G, got "${text}"`, command);
  return bytes;
}

/** A limit's size: more than 0 bytes. */
function parseLimitBytes(text: string, flag: string, command: string): number {
  const bytes = parseBytes(text, flag, command);
  if (bytes < 1) throw new UsageError(`${flag} takes a size like 512M or 2G, got "${text}"`, command);
  return bytes;
}

function parseCount(text: string, flag: string, command: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new UsageError(`${flag} takes a positive integer, got "${text}"`, command);
  return value;
}

export function parseLimits(values: { memory?: string; pids?: string; cpus?: string }, command: string): ResourceLimits {
  const out: ResourceLimits = {};
  if (values.memory !== undefined) out.memoryBytes = parseLimitBytes(values.memory, "--memory", command);
  if (values.pids !== undefined) out.pids = parseCount(values.pids, "--pids", command);
  if (values.cpus !== undefined) {
    out.cpus = Number(values.cpus);
    if (!(out.cpus > 0)) throw new UsageError(`--cpus takes a positive number, got "${values.cpus}"`, command);
  }
  return out;
}

/** --build-pids, --build-memory, --build-tmp: a number/size, or "none" to lift the limit. */
export function parseBuildLimits(values: { "build-pids"?: string; "build-memory"?: string; "build-tmp"?: string }, command: string): BuildLimitOverrides {
  const out: BuildLimitOverrides = {};
  const pids = values["build-pids"];
  const memory = values["build-memory"];
  const tmp = values["build-tmp"];
  if (pids !== undefined) out.pids = pids === "none" ? "none" : parseCount(pids, "--build-pids", command);
  if (memory !== undefined) out.memory = memory === "none" ? "none" : parseLimitBytes(memory, "--build-memory", command);
  if (tmp !== undefined) out.tmp = tmp === "none" ? "none" : parseLimitBytes(tmp, "--build-tmp", command);
  return out;
}

/** The one warning line for `castle run`'s limits that no cgroup enforces here, or undefined. */
export function unenforcedWarning(enforced: EnforcedLimits | undefined): string | undefined {
  const text = describeUnenforced(enforced?.unenforced ?? [], { pids: "--pids", memory: "--memory", cpus: "--cpus" });
  return text && `castle: warning: ${text}\n`;
}
