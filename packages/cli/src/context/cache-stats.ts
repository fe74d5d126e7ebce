// Owns the running totals `castle cache stats` shows: how often the cache answered, what it
// moved, and how much build time it saved, accumulated over every build on this machine.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic, type Store } from "@castle/cache/store";
import type { BuildStats } from "@castle/graph";

export interface CacheTotals {
  builds: number;
  layersCached: number;
  layersPulled: number;
  layersBuilt: number;
  pulledBytes: number;
  pushedBytes: number;
  savedMs: number;
}

const EMPTY: CacheTotals = { builds: 0, layersCached: 0, layersPulled: 0, layersBuilt: 0, pulledBytes: 0, pushedBytes: 0, savedMs: 0 };

function file(store: Store): string {
  return join(store.dir("stats"), "totals.json");
}

export function readTotals(store: Store): CacheTotals {
  try {
    return { ...EMPTY, ...(JSON.parse(readFileSync(file(store), "utf8")) as Partial<CacheTotals>) };
  } catch {
    return { ...EMPTY };
  }
}

export function addToTotals(store: Store, stats: BuildStats): void {
  const t = readTotals(store);
  writeFileAtomic(
    file(store),
    JSON.stringify({
      builds: t.builds + 1,
      layersCached: t.layersCached + stats.cached,
      layersPulled: t.layersPulled + stats.pulled,
      layersBuilt: t.layersBuilt + stats.built,
      pulledBytes: t.pulledBytes + stats.pulledBytes,
      pushedBytes: t.pushedBytes + stats.pushedBytes,
      savedMs: t.savedMs + stats.savedMs,
    } satisfies CacheTotals) + "\n",
    { durable: false },
  );
}
