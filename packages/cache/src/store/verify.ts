// Owns checking the store against itself: every tree is digested again and compared with its
// name; a tree that does not match (edited, truncated, half-deleted) is removed together with the
// records that point at it, so the next build makes or pulls it afresh.

import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { digestTree } from "./digest-tree";
import type { LocalStore } from "./local-store";
import { removeTree } from "./remove-tree";

export interface VerifyResult {
  checked: number;
  corrupt: string[];
  removedRecords: number;
}

export function verifyStore(store: LocalStore, onTree?: (digest: string, ok: boolean) => void): VerifyResult {
  const corrupt: string[] = [];
  const trees = readdirSync(join(store.root, "trees"));
  for (const digest of trees) {
    let ok: boolean;
    try {
      ok = digestTree(store.treePath(digest)).digest === digest;
    } catch {
      ok = false;
    }
    onTree?.(digest, ok);
    if (!ok) corrupt.push(digest);
  }
  const bad = new Set(corrupt);
  let removedRecords = 0;
  for (const record of store.records()) {
    if (!bad.has(record.digest)) continue;
    rmSync(store.recordPath(record.key), { force: true });
    removedRecords++;
  }
  for (const digest of corrupt) removeTree(store.treePath(digest));
  return { checked: trees.length, corrupt, removedRecords };
}
