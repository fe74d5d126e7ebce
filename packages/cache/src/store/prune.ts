// Owns garbage collection of the local store: records, trees and logs that no recently used
// system needs are removed; with a size limit, the least recently used go next until the store
// fits. A tree is removed only when no remaining record points at it.
//
// Builds in progress use records that no root names yet (roots are written when a build ends), so
// a build that writes to the store holds its lock shared (useStore) and a prune takes it
// exclusively: it waits for running builds to finish, and builds that start meanwhile wait for
// the prune. A prune also counts itself in a generation number (odd while it runs), which lets a
// fully cached build check afterwards that no prune ran, instead of taking the lock (see
// store-claim.ts). Running systems are protected by their pins (pins.ts: the exact layers each
// live process uses) and by their roots, which callers name in keepSystems: under every option,
// --max-size included, a pinned layer or a kept system's layer is never removed. The Castles
// nested in this store's systems read it as a lower tier: their roots count like this store's
// own, and while the system holding one runs, its roots and pins are held (nested-use.ts).

import { readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type { KeyRecord, Store } from "../types";
import { acquireLock, type HeldLock, withLock } from "./file-lock";
import { writeFileAtomic, type LocalStore } from "./local-store";
import { readNestedUse, type NestedStore } from "./nested-use";
import { readPins } from "./pins";
import { readRoots } from "./roots";

export interface PruneOptions {
  /** Systems used within this many milliseconds keep their layers. Default 30 days. */
  keepForMs?: number;
  /** Remove least recently used layers, even reachable ones, until trees total at most this. */
  maxBytes?: number;
  /** Only report what would go. */
  dryRun?: boolean;
  now?: number;
  /** Systems whose roots are kept however old and whatever the size (e.g. the ones running now). */
  keepSystems?: Iterable<string>;
  /** Called once when running builds hold the store, so the prune waits for them. */
  onWait?: () => void;
  /** The stores of Castles nested in this store's systems, which read this one (nested-use.ts). */
  nested?: readonly NestedStore[];
}

export interface PruneResult {
  removedRecords: number;
  removedTrees: number;
  freedBytes: number;
  keptBytes: number;
  /** Of keptBytes, what running systems (pins, keepSystems) hold, which no size limit removes. */
  heldBytes: number;
}

function storeLockPath(store: Store): string {
  return join(store.dir("locks"), "store.lock");
}

/** Holds the store against pruning until released; every build holds it from start to root. */
export function useStore(store: Store, onWait?: () => void): Promise<HeldLock> {
  // The notice waits a second: starting the lock helper on a loaded machine must not look like a prune.
  return acquireLock(storeLockPath(store), { shared: true, ...(onWait ? { onWait, waitNoticeMs: 1000 } : {}) });
}

/** How many prunes have started and finished: odd while one runs (or after one died). */
export function pruneGeneration(store: Store): number {
  try {
    return Number.parseInt(readFileSync(pruneGenerationPath(store), "utf8"), 10) || 0;
  } catch {
    return 0;
  }
}

/** The file holding the prune generation (missing: 0). */
export function pruneGenerationPath(store: Store): string {
  return join(store.dir("locks"), "prune-generation");
}

function setPruneGeneration(store: Store, generation: number): void {
  writeFileAtomic(pruneGenerationPath(store), `${generation}\n`, { durable: false });
}

/** Removes what no recent or named system needs, once no build is running (see above). */
export async function pruneStore(store: LocalStore, options: PruneOptions = {}): Promise<PruneResult> {
  if (options.dryRun) return pruneHeld(store, options);
  return withLock(
    storeLockPath(store),
    async () => {
      // Odd before anything is read or removed, even once done (a prune that died left it odd).
      const started = pruneGeneration(store) | 1;
      setPruneGeneration(store, started);
      try {
        // No build runs now: what dead processes left in tmp/ (half-deleted trees of a killed
        // prune among them) can go.
        store.removeStaleStaging();
        return pruneHeld(store, options);
      } finally {
        setPruneGeneration(store, started + 1);
      }
    },
    options.onWait ? { onWait: options.onWait } : {},
  );
}

function pruneHeld(store: LocalStore, options: PruneOptions): PruneResult {
  const now = options.now ?? Date.now();
  const cutoff = now - (options.keepForMs ?? 30 * 24 * 3600 * 1000);
  const keptSystems = new Set(options.keepSystems ?? []);
  // Held: what live processes pinned, and what the kept systems' roots name. Never removed.
  const pins = readPins(store);
  const heldKeys = new Set(pins.keys);
  const lastUse = new Map<string, number>();
  const use = (key: string, used: number, held: boolean) => {
    lastUse.set(key, Math.max(lastUse.get(key) ?? 0, used));
    if (held) heldKeys.add(key);
  };
  for (const root of readRoots(store)) {
    const held = keptSystems.has(root.system);
    const used = held ? now : Date.parse(root.usedAt);
    if (!(used >= cutoff)) continue;
    for (const key of root.keys) use(key, used, held);
  }
  // A nested Castle may also hold one of this store's trees under a key of its own: its digests count.
  const heldDigests = new Set(pins.digests);
  const digestUse = new Map<string, number>();
  for (const nested of readNestedUse(options.nested ?? [], now)) {
    if (!(nested.usedAt >= cutoff)) continue;
    for (const key of nested.keys) use(key, nested.usedAt, nested.held);
    for (const digest of nested.digests) {
      digestUse.set(digest, Math.max(digestUse.get(digest) ?? 0, nested.usedAt));
      if (nested.held) heldDigests.add(digest);
    }
  }
  const usedAt = (record: KeyRecord) => Math.max(lastUse.get(record.key) ?? 0, digestUse.get(record.digest) ?? 0);
  const records = store.records();
  const held: KeyRecord[] = [];
  const keep: KeyRecord[] = [];
  const drop: KeyRecord[] = [];
  for (const record of records) {
    if (heldKeys.has(record.key) || heldDigests.has(record.digest)) held.push(record);
    else (lastUse.has(record.key) || digestUse.has(record.digest) ? keep : drop).push(record);
  }
  const treeBytes = (list: KeyRecord[]) => {
    const sizes = new Map(list.map((r) => [r.digest, r.bytes]));
    return [...sizes.values()].reduce((a, b) => a + b, 0);
  };
  if (options.maxBytes !== undefined) {
    // Least recently used first; what is held counts towards the size but is never a candidate.
    keep.sort((a, b) => usedAt(a) - usedAt(b));
    while (keep.length > 0 && treeBytes([...held, ...keep]) > options.maxBytes) drop.push(keep.shift()!);
  }
  keep.push(...held);
  const kept = new Set([...keep.map((r) => r.digest), ...heldDigests]);
  const doomedTrees = new Map<string, number>();
  for (const record of drop) if (!kept.has(record.digest)) doomedTrees.set(record.digest, record.bytes);
  // Trees no record points at at all (e.g. left by an interrupted prune) go too.
  const referenced = new Set(records.map((r) => r.digest));
  for (const digest of readdirSync(join(store.root, "trees"))) {
    if (referenced.has(digest) || kept.has(digest) || digestUse.has(digest) || doomedTrees.has(digest)) continue;
    doomedTrees.set(digest, 0);
  }
  const result: PruneResult = {
    removedRecords: drop.length,
    removedTrees: doomedTrees.size,
    freedBytes: [...doomedTrees.values()].reduce((a, b) => a + b, 0),
    keptBytes: treeBytes(keep),
    heldBytes: treeBytes(held),
  };
  if (options.dryRun) return result;
  // Records first, so that no record ever points at a missing tree for long (lookup copes anyway).
  for (const record of drop) {
    rmSync(store.recordPath(record.key), { force: true });
    rmSync(store.logPath(record.key), { force: true });
  }
  // Each tree leaves trees/ by a rename before it is deleted: a prune killed midway leaves no
  // half-removed tree there (what it was deleting is in tmp/, cleared by the next castle process).
  for (const digest of doomedTrees.keys()) store.removeTree(digest);
  return result;
}

/** Total bytes of files under a directory (for `cache stats`). */
export function diskUsage(path: string): number {
  let total = 0;
  const visit = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const abs = join(dir, entry.name);
      if (entry.isDirectory()) visit(abs);
      else if (entry.isFile()) total += statSync(abs).size;
    }
  };
  try {
    visit(path);
  } catch {
    // Unreadable parts are not counted.
  }
  return total;
}
