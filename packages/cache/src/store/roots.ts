// Owns GC roots: each system that was built or run records which keys and trees it used, and
// when (the later of the time it holds and its mtime). Pruning keeps what recently used systems
// need.

import { readFileSync, readdirSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";
import type { KeyRecord, Store } from "../types";
import { writeFileAtomic } from "./local-store";

export interface RootRecord {
  system: string;
  usedAt: string;
  keys: string[];
  digests: string[];
}

/**
 * Records that `system` just used these layers. A root that names the same layers as before is
 * only touched: its mtime says when it was last used, and a fully cached run writes nothing.
 */
export function recordRoot(store: Store, system: string, records: KeyRecord[]): void {
  const file = rootPath(store, system);
  const root: RootRecord = {
    system,
    usedAt: new Date().toISOString(),
    keys: [...new Set(records.map((r) => r.key))].sort(),
    digests: [...new Set(records.map((r) => r.digest))].sort(),
  };
  const previous = readRoot(file);
  if (previous && sameLayers(previous, root)) {
    const now = new Date();
    try {
      utimesSync(file, now, now);
      return;
    } catch {
      // not ours to touch: write it anew below
    }
  }
  writeFileAtomic(file, JSON.stringify(root) + "\n", { durable: false });
}

/** The file holding a system's root. */
export function rootPath(store: Store, system: string): string {
  return join(store.dir("roots"), `${encodeURIComponent(system)}.json`);
}

function sameLayers(a: RootRecord, b: RootRecord): boolean {
  return a.system === b.system && a.keys.join() === b.keys.join() && a.digests.join() === b.digests.join();
}

/** A root as recorded, its use time the later of what it says and when it was last touched. */
function readRoot(file: string): RootRecord | undefined {
  try {
    const root = JSON.parse(readFileSync(file, "utf8")) as RootRecord;
    const touched = statSync(file).mtimeMs;
    if (!(Date.parse(root.usedAt) >= touched)) root.usedAt = new Date(touched).toISOString();
    return root;
  } catch {
    return undefined; // missing, or damaged: a damaged root protects nothing
  }
}

export function readRoots(store: Store): RootRecord[] {
  return readRootsIn(store.dir("roots"));
}

/** The roots in a store's roots/ dir (missing: none); reads only (another Castle's store too). */
export function readRootsIn(dir: string): RootRecord[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: RootRecord[] = [];
  for (const name of names) {
    if (!name.endsWith(".json")) continue;
    const root = readRoot(join(dir, name));
    if (root && Array.isArray(root.keys)) out.push(root);
  }
  return out;
}
