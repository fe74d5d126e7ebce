// Owns the local store on disk: trees/<digest> (immutable trees, usable as overlay lowers),
// keys/<key>.json (records), logs/<key>.log, tmp/ (staging) and locks/. Nothing partial is ever
// visible: trees arrive by rename after a syncfs (shared by commits that finish together, see
// group-sync.ts), records by write-to-temp + fsync + rename; trees leave by rename (trees.ts).
// The store's directory is private to its owner (0700): trees hold world-writable directories
// (every rootfs has a tmp/), which no other user of the machine may reach. A store may have
// read-only lower tiers (lower-stores.ts): what it lacks is looked up there, their trees used in
// place; only its own trees are ever verified, sealed or removed.

import {
  closeSync, cpSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync,
  unlinkSync, writeSync,
} from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { CastleError } from "@castle/errors";
import { processAlive } from "@castle/sandbox";
import type { CommitMeta, KeyRecord, LayerKey, OutputDigest, Staging, Store } from "../types";
import { digestTree, digestTreeAsync } from "./digest-tree";
import { withLock } from "./file-lock";
import { GroupSync } from "./group-sync";
import { LowerStores } from "./lower-stores";
import { removeTree } from "./remove-tree";
import { LocalStoreClaim } from "./store-claim";
import { isTreeDir, removeTreeEntry, sealTree } from "./trees";
import { takeTrustedDigest } from "./trusted-digest";
import { ownedName, removeDeadOwners, uniqueHex } from "./owned-names";

const HEX64 = /^[0-9a-f]{64}$/;

/** The default store directory: $CASTLE_CACHE_DIR, else $XDG_CACHE_HOME/castle, else ~/.cache/castle. */
export function defaultStoreRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CASTLE_CACHE_DIR) return env.CASTLE_CACHE_DIR;
  const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), ".cache");
  return join(base, "castle");
}

export interface StoreOptions {
  /**
   * Digest every tree again the first time this process looks it up (`--verify`): a tree whose
   * content does not match its name is removed with the record that led to it, so the layer is
   * built or pulled again. A lower tier's tree is checked the same way; one that does not match
   * is left where it is (read-only here) and not used. Default false: a look-up checks only that
   * the tree is a real directory.
   */
  verifyTrees?: boolean;
  /** Told of each corrupt tree verifyTrees found (and removed). */
  onCorruptTree?: (tree: CorruptTree) => void;
  /** Read-only stores searched after this one (see lower-stores.ts), nearest first. Default none. */
  lowers?: readonly string[];
}

export interface CorruptTree {
  digest: OutputDigest;
  /** What the tree digests to now, or why it could not be read. */
  actual: string;
  /** The layer whose look-up met it, when a look-up did. */
  name?: string;
  /** Where it is when a lower tier holds it: left there, only not used. */
  lower?: string;
}

/** Opens (creating if needed) the local store at root. */
export function openStore(root: string = defaultStoreRoot(), options: StoreOptions = {}): LocalStore {
  return new LocalStore(root, options);
}

export class LocalStore implements Store {
  readonly root: string;
  /** The read-only tiers beneath this store (empty for most stores). */
  readonly lowers: LowerStores;
  private readonly syncs: GroupSync;
  /** Digests whose trees verifyTrees found sound in this process. */
  private readonly verified = new Set<OutputDigest>();
  /** Digests whose lower tier's tree verifyTrees found corrupt (never used by this process). */
  private readonly corruptBelow = new Set<OutputDigest>();

  constructor(root: string, private readonly options: StoreOptions = {}) {
    this.root = root;
    this.lowers = new LowerStores(options.lowers ?? []);
    try {
      // A store made here is private to its owner; an existing one keeps the mode it has.
      mkdirSync(root, { recursive: true, mode: 0o700 });
      for (const sub of ["trees", "keys", "logs", "tmp", "locks"]) mkdirSync(join(root, sub), { recursive: true });
    } catch (error) {
      throw new CastleError("CASTLE_DIR_UNUSABLE", `cannot create the store directory ${root}: ${reasonOf(error)}`, {
        cause: error, data: { dir: root, kind: "store" },
        hint: "set CASTLE_CACHE_DIR (or XDG_CACHE_HOME, or HOME) to a directory you can write",
      });
    }
    this.syncs = new GroupSync(join(root, "tmp"));
  }

  /**
   * Removes what killed processes left in tmp/ (staging dirs, downloads and trees being removed
   * are named `<label>-<pid>-<random>`) and their pins: anything whose process is gone. Returns
   * how many were removed.
   */
  removeStaleStaging(): number {
    let removed = removeDeadOwners(join(this.root, "tmp"));
    // Pins (pins.ts, named <pid>-<n>.json) of processes that are gone protect nothing any more.
    let pins: string[] = [];
    try {
      pins = readdirSync(join(this.root, "pins"));
    } catch {
      // no pin was ever written here
    }
    for (const name of pins) {
      const owner = /^(\d+)-\d+\.json$/.exec(name);
      if (!owner || processAlive(Number(owner[1]))) continue;
      rmQuiet(join(this.root, "pins", name));
      removed++;
    }
    return removed;
  }

  lookup(key: LayerKey): KeyRecord | undefined {
    assertHex(key, "layer key");
    const file = this.recordPath(key);
    let text: string | undefined;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      text = undefined;
    }
    if (text !== undefined) {
      const record = parseRecord(text, key);
      if (record && this.hasTree(record.digest, record.name)) return record;
      // A damaged record, a missing or corrupt tree: forget it so the layer is built or pulled again.
      rmQuiet(file);
    }
    return this.lowers.empty ? undefined : this.lowers.lookup(key, (found) => this.treeUsable(found.digest, found.name) || this.lowerTreeUsable(found.digest, found.name));
  }

  /** Where the tree lives: in this store, else in the lower tier that has it (else where it would be here). */
  treePath(digest: OutputDigest): string {
    const own = this.localTreePath(digest);
    if (this.lowers.empty || isTreeDir(own) || this.corruptBelow.has(digest)) return own;
    return this.lowers.treePath(digest) ?? own;
  }

  /** Where this store itself keeps (or would keep) the tree: the only place it verifies, seals or removes. */
  localTreePath(digest: OutputDigest): string {
    assertHex(digest, "output digest");
    return join(this.root, "trees", digest);
  }

  /**
   * One lstat: the tree must be a real directory (a symlink in its place does not count). With
   * verifyTrees, also digested (once per process); a corrupt tree is removed and is not there.
   * Else a lower tier's tree counts too (with verifyTrees, digested the same way).
   */
  hasTree(digest: OutputDigest, name?: string): boolean {
    return this.treeUsable(digest, name) || (!this.lowers.empty && this.lowerTreeUsable(digest, name));
  }

  /** Removes the tree with this digest (renamed out of trees/ first, see trees.ts). */
  removeTree(digest: OutputDigest, options: { keepDirs?: boolean } = {}): boolean {
    return removeTreeEntry(this.localTreePath(digest), join(this.root, "tmp"), `removed-${digest}`, options);
  }

  buildCache(id: string): string {
    if (!/^[A-Za-z0-9._-]+$/.test(id) || id.startsWith(".")) throw new Error(`bad build cache id ${id}`);
    const dir = join(this.dir("build-caches"), id);
    if (existsSync(dir)) return dir;
    const seed = this.lowers.empty ? undefined : this.lowers.buildCache(id);
    if (seed) {
      // Started from a lower tier's copy (timestamps kept, so make sees what is up to date); a
      // cache is never part of a key, so any content is a valid start. Copied aside, then renamed.
      const temp = join(this.root, "tmp", ownedName(`cache-${id}`));
      try {
        cpSync(seed, temp, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
        renameSync(temp, dir);
      } catch {
        // Unreadable, or raced by another process: start empty (or use what that one made).
        removeTree(temp);
      }
    }
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  /** This store's own tree: a real directory, and with verifyTrees digested (once per process). */
  private treeUsable(digest: OutputDigest, name?: string): boolean {
    const path = this.localTreePath(digest);
    if (!isTreeDir(path)) return false;
    const actual = this.misdigest(path, digest);
    if (actual === undefined) return true;
    this.removeTree(digest);
    this.options.onCorruptTree?.({ digest, actual, ...(name !== undefined ? { name } : {}) });
    return false;
  }

  /** A lower tier's tree, checked as treeUsable checks this store's own; a corrupt one stays. */
  private lowerTreeUsable(digest: OutputDigest, name?: string): boolean {
    if (this.corruptBelow.has(digest)) return false;
    const path = this.lowers.treePath(digest);
    if (path === undefined) return false;
    const actual = this.misdigest(path, digest);
    if (actual === undefined) return true;
    this.corruptBelow.add(digest);
    this.options.onCorruptTree?.({ digest, actual, lower: path, ...(name !== undefined ? { name } : {}) });
    return false;
  }

  /** With verifyTrees, what the tree at path digests to when that is not digest (once per
   * process and digest); undefined when it is sound, or not to be checked. */
  private misdigest(path: string, digest: OutputDigest): string | undefined {
    if (!this.options.verifyTrees || this.verified.has(digest)) return undefined;
    let actual: string;
    try {
      actual = digestTree(path).digest;
    } catch (error) {
      actual = `unreadable (${(error as Error).message})`;
    }
    if (actual !== digest) return actual;
    this.verified.add(digest);
    return undefined;
  }

  async stage(label: string): Promise<Staging> {
    const dir = join(this.root, "tmp", ownedName(label));
    const tree = join(dir, "tree");
    const work = join(dir, "work");
    mkdirSync(tree, { recursive: true });
    mkdirSync(work);
    return { dir, tree, work, discard: async () => removeTree(dir) };
  }

  async commit(staging: Staging, key: LayerKey, meta: CommitMeta): Promise<KeyRecord> {
    assertHex(key, "layer key");
    try {
      // A digest the unpacker computed while writing this very tree, else read the tree back.
      const known = takeTrustedDigest(meta.treeDigest, staging.tree);
      const { digest, bytes, entries } = known ?? (await digestTreeAsync(staging.tree));
      if (meta.expectDigest !== undefined && meta.expectDigest !== digest) {
        throw new CastleError(
          "CASTLE_DIGEST_MISMATCH",
          `the tree for ${meta.name} has digest ${digest}, expected ${meta.expectDigest}; it was discarded`,
          { data: { key, name: meta.name, expected: meta.expectDigest, actual: digest } },
        );
      }
      await this.placeTree(staging.tree, digest);
      return this.writeRecord({ key, digest, bytes, entries, ...recordMeta(meta) });
    } finally {
      await staging.discard();
    }
  }

  link(key: LayerKey, digest: OutputDigest, meta: CommitMeta): KeyRecord {
    if (!this.hasTree(digest)) {
      throw new CastleError("CASTLE_CACHE_MISSING_TREE", `no tree ${digest} in the store`, {
        data: { key, digest },
      });
    }
    const sizes = this.records().find((r) => r.digest === digest);
    return this.writeRecord({
      key, digest, bytes: sizes?.bytes ?? 0, entries: sizes?.entries ?? 0, ...recordMeta(meta),
    });
  }

  claim(onWait?: () => void): LocalStoreClaim {
    return new LocalStoreClaim(this, onWait);
  }

  withKeyLock<T>(key: LayerKey, fn: () => Promise<T>): Promise<T> {
    assertHex(key, "layer key");
    return withLock(join(this.root, "locks", `${key}.lock`), fn);
  }

  logPath(key: LayerKey): string {
    assertHex(key, "layer key");
    return join(this.root, "logs", `${key}.log`);
  }

  dir(kind: string): string {
    if (!/^[a-z][a-z0-9-]*$/.test(kind)) throw new Error(`bad store dir kind ${kind}`);
    const path = join(this.root, kind);
    mkdirSync(path, { recursive: true });
    return path;
  }

  records(): KeyRecord[] {
    const out: KeyRecord[] = [];
    for (const name of readdirSync(join(this.root, "keys"))) {
      if (!name.endsWith(".json")) continue;
      const key = name.slice(0, -5);
      try {
        const record = parseRecord(readFileSync(join(this.root, "keys", name), "utf8"), key);
        if (record) out.push(record);
      } catch {
        // A record removed while listing is simply not listed.
      }
    }
    return out;
  }

  /** Path of a key's record file. */
  recordPath(key: LayerKey): string {
    return join(this.root, "keys", `${key}.json`);
  }

  lastUsePath(system: string, layer: string): string {
    // Not under dir("explain"): that makes the directory, and this is read for every layer of
    // every run.
    return join(this.root, "explain", system, `${layer}.json`);
  }

  private async placeTree(staged: string, digest: OutputDigest): Promise<void> {
    const target = this.localTreePath(digest);
    // Same content already stored, here or in a lower tier (with verifyTrees, found sound), whose
    // tree the record then names, used in place: the staging copy goes.
    if (this.hasTree(digest)) return;
    await this.syncs.sync();
    if (this.hasTree(digest)) return;
    try {
      // Something that is not a real directory (a symlink, a file) may be in the way: it goes.
      this.removeTree(digest, { keepDirs: true });
      renameSync(staged, target);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // Another process committed the same digest between our check and our rename.
      if ((code === "ENOTEMPTY" || code === "EEXIST") && isTreeDir(target)) return;
      throw new CastleError("CASTLE_CACHE_IO", `cannot move a built tree into ${target}`, {
        cause: error, data: { target },
      });
    }
    sealTree(target);
    if (this.options.verifyTrees) this.verified.add(digest); // digested on its way in
  }

  private writeRecord(record: KeyRecord): KeyRecord {
    try {
      // The temp file goes in tmp/, where a process killed mid-write leaves it to removeStaleStaging.
      writeFileAtomic(this.recordPath(record.key), JSON.stringify(record, null, 2) + "\n", { tempDir: join(this.root, "tmp") });
    } catch (error) {
      throw new CastleError("CASTLE_CACHE_IO", `cannot record ${record.name || record.key} in the store ${this.root}: ${(error as Error).message}`, {
        cause: error, data: { key: record.key, root: this.root },
        hint: "is its disk full? free some space (e.g. `castle cache prune`) and run again",
      });
    }
    return record;
  }
}

function recordMeta(meta: CommitMeta): Pick<KeyRecord, "name" | "buildMs" | "origin" | "createdAt"> {
  return { name: meta.name, buildMs: meta.buildMs, origin: meta.origin, createdAt: new Date().toISOString() };
}

function parseRecord(text: string, key: LayerKey): KeyRecord | undefined {
  try {
    const record = JSON.parse(text) as KeyRecord;
    if (record.key !== key || typeof record.digest !== "string" || !HEX64.test(record.digest)) {
      return undefined;
    }
    return record;
  } catch {
    return undefined;
  }
}

function assertHex(value: string, what: string): void {
  if (!HEX64.test(value)) throw new Error(`invalid ${what}: ${JSON.stringify(value)}`);
}

/** An fs error in a few plain words: "permission denied", "read-only file system"… */
function reasonOf(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const plain: Record<string, string> = {
    EACCES: "permission denied", EPERM: "permission denied", EROFS: "read-only file system",
    ENOTDIR: "a part of its path is not a directory", ENOSPC: "no space left on the device", EEXIST: "a file is in the way",
  };
  return (code && plain[code]) ?? (error as Error).message;
}

function rmQuiet(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Already gone.
  }
}

/**
 * Writes a file so that readers see the old content or the new, never a mix. `durable: false`
 * skips the fsync for bookkeeping that may be lost in a crash (instances, statistics, notes).
 * `tempDir` (on the same filesystem) holds the temp file instead of the target's directory.
 */
export function writeFileAtomic(file: string, content: string | Buffer, options: { durable?: boolean; tempDir?: string } = {}): void {
  const tag = `${process.pid}${options.tempDir ? "-" : "."}${uniqueHex()}`;
  const temp = options.tempDir ? join(options.tempDir, `atomic-${tag}.tmp`) : `${file}.${tag}.tmp`;
  const fd = openSync(temp, "w", 0o644);
  try {
    try {
      writeSync(fd, typeof content === "string" ? Buffer.from(content) : content);
      if (options.durable !== false) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, file);
  } catch (error) {
    // A write that failed (a full disk) must not leave its temp file beside the real ones.
    rmQuiet(temp);
    throw error;
  }
}
