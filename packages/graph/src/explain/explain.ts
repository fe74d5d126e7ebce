// Owns `explain`: why a layer must be built, as the differences between the inputs of its last
// build (recorded per system and layer name in the store) and the inputs it has now.

import { mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { writeFileAtomic, type Store } from "@castle/cache/store";
import type { KeyInputs, KeyedDep } from "../hash/layer-key";
import type { BuildReason } from "../types";
import type { SourceChangeDetail } from "./source-changes";

/** What was last used for a layer name in a system: its key, inputs and build time. */
export interface LastUse {
  key: string;
  inputs: KeyInputs;
  /** Wall time of the last build of this layer, for scheduling priorities. */
  buildMs: number;
}

/** The last use of this layer name in this system, if any was recorded. */
export function lastUse(store: Store, system: string, layer: string): LastUse | undefined {
  // Read for every layer on every run: one open, no existence check or mkdir before it.
  try {
    return JSON.parse(readFileSync(store.lastUsePath(system, layer), "utf8")) as LastUse;
  } catch {
    return undefined;
  }
}

/** Records the inputs of a layer that was just built, pulled or found, unless unchanged. */
export function recordUse(store: Store, system: string, layer: string, use: LastUse, previous?: LastUse): void {
  if (previous && previous.key === use.key && previous.buildMs === use.buildMs) return;
  const file = store.lastUsePath(system, layer);
  mkdirSync(dirname(file), { recursive: true });
  writeFileAtomic(file, JSON.stringify(use) + "\n", { durable: false });
}

const short = (digest: string) => digest.slice(0, 12);

/**
 * The differences between two sets of inputs, one line each, most telling first. `sourceDetail`
 * may say which files of a changed source changed (see source-changes.ts).
 */
export function describeChanges(before: KeyInputs | undefined, now: KeyInputs, sourceDetail?: SourceChangeDetail): BuildReason {
  const detail = (name: string, old: string, id: string) => {
    const files = sourceDetail?.({ name, before: old, now: id });
    return files ? ` (${files})` : "";
  };
  if (!before) return { kind: "new", changes: ["never built before under this name"] };
  const changes: string[] = [];
  if (before.schema !== now.schema) changes.push(`Castle's build schema changed (${before.schema} → ${now.schema})`);
  if (before.kind !== now.kind) changes.push(`kind changed (${before.kind} → ${now.kind})`);
  if (before.platform !== now.platform) changes.push(`platform changed (${before.platform} → ${now.platform})`);
  if (before.script !== now.script) changes.push("script changed");
  if (JSON.stringify(before.shell) !== JSON.stringify(now.shell)) changes.push("shell changed");
  changes.push(...mapChanges("env", before.env ?? {}, now.env ?? {}));
  if (before.cwd !== now.cwd) changes.push(`cwd changed (${before.cwd} → ${now.cwd})`);
  if (before.network !== now.network) changes.push(`network changed (${before.network} → ${now.network})`);
  if (JSON.stringify(before.cachePaths) !== JSON.stringify(now.cachePaths)) changes.push("cache paths changed");
  changes.push(...depChanges("dependency", before.root ?? [], now.root ?? []));
  if (before.from?.id !== now.from?.id) {
    const files = before.from && now.from ? detail(now.from.name, before.from.id, now.from.id) : "";
    changes.push(`source ${now.from?.name ?? before.from?.name}: ${describeId(before.from?.id ?? "none")} → ${describeId(now.from?.id ?? "none")}${files}`);
  }
  const mountsBefore = new Map((before.mounts ?? []).map((m) => [m.path, m]));
  for (const mount of now.mounts ?? []) {
    const old = mountsBefore.get(mount.path);
    mountsBefore.delete(mount.path);
    if (!old) changes.push(`new mount ${mount.path} (${mount.name})`);
    else if (mount.kind === "source" && old.kind === "source") {
      if (old.id !== mount.id) {
        changes.push(`source ${mount.name} at ${mount.path}: ${describeId(old.id)} → ${describeId(mount.id)}${detail(mount.name, old.id, mount.id)}`);
      }
    } else if (mount.kind === "layer" && old.kind === "layer") {
      changes.push(...depChanges(`layer mounted at ${mount.path}:`, old.layers, mount.layers));
    } else changes.push(`mount ${mount.path} changed kind`);
  }
  for (const path of mountsBefore.keys()) changes.push(`mount ${path} removed`);
  if (changes.length === 0) changes.push("inputs are the same as the last build, but its output is no longer stored");
  return { kind: "changed", changes };
}

function describeId(id: string): string {
  const [kind, value] = id.split(":", 2);
  return value && value.length >= 40 ? `${kind}:${short(value)}` : id;
}

function mapChanges(what: string, before: Record<string, string>, now: Record<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(now)) {
    if (!(k in before)) out.push(`${what} ${k} added`);
    else if (before[k] !== v) out.push(`${what} ${k} changed`);
  }
  for (const k of Object.keys(before)) if (!(k in now)) out.push(`${what} ${k} removed`);
  return out;
}

function depChanges(what: string, before: KeyedDep[], now: KeyedDep[]): string[] {
  const out: string[] = [];
  const old = new Map(before.map((d) => [d.name, d.digest]));
  for (const dep of now) {
    const digest = old.get(dep.name);
    old.delete(dep.name);
    if (digest === undefined) out.push(`${what} ${dep.name} added`);
    else if (digest !== dep.digest) out.push(`${what} ${dep.name}: output ${short(digest)} → ${short(dep.digest)}`);
  }
  for (const name of old.keys()) out.push(`${what} ${name} removed`);
  if (out.length === 0 && before.map((d) => d.name).join() !== now.map((d) => d.name).join()) {
    out.push(`${what} order changed`);
  }
  return out;
}
