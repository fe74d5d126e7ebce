// Owns checking the store against itself: every tree is digested again and compared with its
// name; a tree that does not match (edited, truncated, half-deleted) is removed together with the
// records that point at it, so the next build makes or pulls it afresh. Records that cannot be
// read, name another key, or point at a tree that is gone are damaged and removed too.

import { readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { digestTree } from "./digest-tree";
import type { LocalStore } from "./local-store";
import { isTreeDir, sealTree } from "./trees";

export interface VerifyResult {
  checked: number;
  corrupt: string[];
  /** Keys whose records were unreadable or pointed at a missing tree (removed). */
  damaged: string[];
  removedRecords: number;
}

const HEX64 = /^[0-9a-f]{64}$/;

export function verifyStore(
  store: LocalStore,
  onTree?: (digest: string, ok: boolean) => void,
  onDamagedRecord?: (key: string, why: string) => void,
): VerifyResult {
  const corrupt: string[] = [];
  const trees = readdirSync(join(store.root, "trees"));
  for (const digest of trees) {
    let ok: boolean;
    try {
      // A symlink (or a file) in a tree's place is never a sound tree, whatever it points at.
      ok = isTreeDir(store.treePath(digest)) && digestTree(store.treePath(digest)).digest === digest;
    } catch {
      ok = false;
    }
    onTree?.(digest, ok);
    if (!ok) corrupt.push(digest);
    else sealTree(store.treePath(digest)); // trees placed before trees were sealed get sealed now
  }
  const bad = new Set(corrupt);
  let removedRecords = 0;
  const damaged: string[] = [];
  for (const name of readdirSync(join(store.root, "keys"))) {
    if (!name.endsWith(".json")) continue;
    const key = name.slice(0, -5);
    const why = recordProblem(join(store.root, "keys", name), key, bad, (digest) => store.hasTree(digest));
    if (why === undefined) continue;
    if (why !== "corrupt tree") {
      damaged.push(key);
      onDamagedRecord?.(key, why);
    }
    rmSync(join(store.root, "keys", name), { force: true });
    removedRecords++;
  }
  for (const digest of corrupt) store.removeTree(digest);
  return { checked: trees.length, corrupt, damaged, removedRecords };
}

/** Why a record cannot be used, or undefined when it is sound. */
function recordProblem(file: string, key: string, bad: Set<string>, hasTree: (digest: string) => boolean): string | undefined {
  let record: { key?: unknown; digest?: unknown };
  try {
    record = JSON.parse(readFileSync(file, "utf8")) as typeof record;
  } catch {
    return "it is not valid JSON";
  }
  if (typeof record !== "object" || record === null || record.key !== key) return "it names another key";
  if (typeof record.digest !== "string" || !HEX64.test(record.digest)) return "it has no valid digest";
  if (bad.has(record.digest)) return "corrupt tree";
  // Checked now, not against the listing above: a build may have placed the tree since.
  if (!hasTree(record.digest)) return `its tree ${record.digest} is missing`;
  return undefined;
}
