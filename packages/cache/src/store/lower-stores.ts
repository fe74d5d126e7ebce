// Owns the read-only lower tiers of a store: the stores of the Castles a nested Castle runs inside
// (bound read-only into the system), searched after the store's own. Content addressing makes
// that safe: a record names the tree of its key wherever it is, and a tree in any tier is the
// same bytes as it would be in the store's own. Nothing here ever writes: a lower tier is read
// only (its records and trees, and a build cache to start one of the store's own from).
// LocalStore asks it when a key, a tree or a build cache is not its own.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { KeyRecord, LayerKey, OutputDigest } from "../types";

/** How CASTLE_STORE_LOWERS lists the lower tiers: absolute paths, colon-separated, nearest first. */
export function lowerStoreRoots(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.CASTLE_STORE_LOWERS ?? "").split(":").filter((dir) => dir.startsWith("/"));
}

export class LowerStores {
  /** The tiers' store directories, searched in this order. */
  readonly roots: readonly string[];

  constructor(roots: readonly string[]) {
    this.roots = [...roots];
  }

  get empty(): boolean {
    return this.roots.length === 0;
  }

  /**
   * The first tier's record for key whose tree `usable` accepts (the store above decides: its own
   * trees, or a tier's, checked as it checks its own): a record whose tree is nowhere is
   * skipped, never removed.
   */
  lookup(key: LayerKey, usable: (record: KeyRecord) => boolean): KeyRecord | undefined {
    for (const root of this.roots) {
      const record = readRecord(join(root, "keys", `${key}.json`), key);
      if (record && usable(record)) return record;
    }
    return undefined;
  }

  /** Where a tier holds the tree with this digest, or undefined when none does. */
  treePath(digest: OutputDigest): string | undefined {
    for (const root of this.roots) {
      const path = join(root, "trees", digest);
      if (existsSync(path)) return path;
    }
    return undefined;
  }

  /** A tier's build cache of this id (to copy from), or undefined. */
  buildCache(id: string): string | undefined {
    for (const root of this.roots) {
      const path = join(root, "build-caches", id);
      if (existsSync(path)) return path;
    }
    return undefined;
  }
}

const HEX64 = /^[0-9a-f]{64}$/;

function readRecord(file: string, key: LayerKey): KeyRecord | undefined {
  try {
    const record = JSON.parse(readFileSync(file, "utf8")) as KeyRecord;
    return record.key === key && typeof record.digest === "string" && HEX64.test(record.digest) ? record : undefined;
  } catch {
    return undefined;
  }
}
