// Owns GC roots: each system that was built or run records which keys and trees it used, and
// when. Pruning keeps what recently used systems need.

import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { KeyRecord, Store } from "../types";
import { writeFileAtomic } from "./local-store";

export interface RootRecord {
  system: string;
  usedAt: string;
  keys: string[];
  digests: string[];
}

/** Records that `system` just used these layers. */
export function recordRoot(store: Store, system: string, records: KeyRecord[]): void {
  const root: RootRecord = {
    system,
    usedAt: new Date().toISOString(),
    keys: [...new Set(records.map((r) => r.key))].sort(),
    digests: [...new Set(records.map((r) => r.digest))].sort(),
  };
  writeFileAtomic(join(store.dir("roots"), `${encodeURIComponent(system)}.json`), JSON.stringify(root) + "\n", { durable: false });
}

export function readRoots(store: Store): RootRecord[] {
  const dir = store.dir("roots");
  const out: RootRecord[] = [];
  for (const name of readdirSync(dir)) {
    if (!name.endsWith(".json")) continue;
    try {
      out.push(JSON.parse(readFileSync(join(dir, name), "utf8")) as RootRecord);
    } catch {
      // A damaged root protects nothing; prune treats its layers as unreachable.
    }
  }
  return out;
}
