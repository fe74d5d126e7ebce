// Owns what the Castles nested in a store's systems use of it. A Castle inside a system reads the
// outer store as a lower tier (lower-stores.ts): its roots and pins name the outer store's keys
// and trees, which the outer prune must count as used. Their stores live in the outer Castle's
// data dir (the caller says where, and whether the system holding each may be running); this
// module only reads them, never asking whose process lives (their pids are another namespace's).

import { join } from "node:path";
import type { LayerKey, OutputDigest } from "../types";
import { readPinsIn } from "./pins";
import { readRootsIn } from "./roots";

/** The store of a Castle nested in one of this store's systems. */
export interface NestedStore {
  /** Its store directory (its CASTLE_CACHE_DIR, as the host sees it). */
  root: string;
  /** Whether the system holding it may be running now: then all it names is held. */
  running: boolean;
}

/** One use of this store's layers by a nested Castle: a root, or (held) its pins. */
export interface NestedUse {
  keys: LayerKey[];
  digests: OutputDigest[];
  /** When it was used (ms); a held use counts as now. */
  usedAt: number;
  /** Never removed, whatever the prune's options (the system holding it is running). */
  held: boolean;
}

/** Every root of each nested store, and the pins of those whose system runs. */
export function readNestedUse(stores: readonly NestedStore[], now: number): NestedUse[] {
  const uses: NestedUse[] = [];
  for (const store of stores) {
    for (const root of readRootsIn(join(store.root, "roots"))) {
      uses.push({
        keys: root.keys,
        digests: Array.isArray(root.digests) ? root.digests : [],
        usedAt: store.running ? now : Date.parse(root.usedAt),
        held: store.running,
      });
    }
    if (!store.running) continue; // no process of a system that is not running lives
    const pins = readPinsIn(join(store.root, "pins"));
    uses.push({ keys: [...pins.keys], digests: [...pins.digests], usedAt: now, held: true });
  }
  return uses;
}
