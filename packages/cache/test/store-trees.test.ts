// Tests for the entries of trees/ (store/trees.ts, and the store's use of it): what counts as a
// tree, sealing, removal by rename, replacing what is in a tree's place, and look-ups that digest
// every tree (--verify). Real files in temp dirs; the removal-by-rename is also hit by kill -9 in
// test/reliability/store-prune.test.ts.

import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openStore, removeTree, type KeyRecord } from "../src/index";
import { isTreeDir, removeTreeEntry, SEALED_TREE_MODE } from "../src/store/trees";

const temps: string[] = [];
function temp(): string {
  const dir = mkdtempSync(join(tmpdir(), "castle-trees-"));
  temps.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of temps.splice(0)) removeTree(dir);
});

async function commit(store: ReturnType<typeof openStore>, key: string, content: string): Promise<KeyRecord> {
  const staging = await store.stage("t");
  mkdirSync(join(staging.tree, "etc"));
  writeFileSync(join(staging.tree, "etc/file"), content, { mode: 0o644 });
  return store.commit(staging, key, { name: `layer-${key[0]}`, buildMs: 0, origin: "built" });
}

describe("isTreeDir", () => {
  it("is true for a real directory only: not for a symlink to one, a file, or nothing", () => {
    const dir = temp();
    mkdirSync(join(dir, "real"));
    symlinkSync(join(dir, "real"), join(dir, "link"));
    writeFileSync(join(dir, "file"), "x");
    expect([isTreeDir(join(dir, "real")), isTreeDir(join(dir, "link")), isTreeDir(join(dir, "file")), isTreeDir(join(dir, "none"))])
      .toEqual([true, false, false, false]);
    expect(isTreeDir(join(dir, "file", "below"))).toBe(false); // ENOTDIR is "not a tree" too
  });
});

describe("removeTreeEntry", () => {
  it("renames a sealed tree out into tmp first, then deletes it there", () => {
    const dir = temp();
    const tmp = join(dir, "tmp");
    mkdirSync(tmp);
    const tree = join(dir, "tree");
    mkdirSync(join(tree, "ro"), { recursive: true });
    writeFileSync(join(tree, "ro/f"), "x");
    chmodSync(join(tree, "ro"), 0o555);
    chmodSync(tree, SEALED_TREE_MODE);
    expect(removeTreeEntry(tree, tmp, "removed-x")).toBe(true);
    expect(isTreeDir(tree)).toBe(false);
    expect(readdirSync(tmp)).toEqual([]);
    expect(removeTreeEntry(tree, tmp, "removed-x")).toBe(false);
  });

  it("with keepDirs, moves only what is not a real directory", () => {
    const dir = temp();
    const tmp = join(dir, "tmp");
    mkdirSync(tmp);
    mkdirSync(join(dir, "tree"));
    symlinkSync(join(dir, "tree"), join(dir, "link"));
    expect(removeTreeEntry(join(dir, "tree"), tmp, "x", { keepDirs: true })).toBe(false);
    expect(isTreeDir(join(dir, "tree"))).toBe(true);
    expect(removeTreeEntry(join(dir, "link"), tmp, "x", { keepDirs: true })).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(["tmp", "tree"]);
  });

  it("names what it moves so that removeStaleStaging clears it once its process is gone", () => {
    const root = temp();
    const store = openStore(root);
    // What a removal killed between its rename and its delete leaves: a tree in tmp/ named for a dead pid.
    mkdirSync(join(root, "tmp", "removed-0123-999999999-0a1b2c3d", "usr"), { recursive: true });
    expect(store.removeStaleStaging()).toBe(1);
    expect(readdirSync(join(root, "tmp"))).toEqual([]);
  });
});

describe("the store's trees", () => {
  it("are sealed once placed (their own directory 0555), inside untouched; the store is private", async () => {
    const root = join(temp(), "store");
    const store = openStore(root);
    const record = await commit(store, "1".repeat(64), "one");
    expect(statSync(root).mode & 0o777).toBe(0o700);
    expect(statSync(store.treePath(record.digest)).mode & 0o777).toBe(SEALED_TREE_MODE);
    expect(statSync(join(store.treePath(record.digest), "etc/file")).mode & 0o777).toBe(0o644);
    expect(statSync(join(store.treePath(record.digest), "etc")).mode & 0o777).not.toBe(SEALED_TREE_MODE);
    expect(store.removeTree(record.digest)).toBe(true);
    expect(store.lookup(record.key)).toBeUndefined();
  });

  it("a symlink in a tree's place is not the tree: the look-up misses, and a new commit replaces it", async () => {
    const store = openStore(temp());
    const a = await commit(store, "a".repeat(64), "a");
    const b = await commit(store, "b".repeat(64), "b");
    const path = store.treePath(a.digest);
    chmodSync(path, 0o755);
    rmSync(path, { recursive: true });
    symlinkSync(store.treePath(b.digest), path);
    expect(store.hasTree(a.digest)).toBe(false);
    expect(store.lookup(a.key)).toBeUndefined();
    const again = await commit(store, "a".repeat(64), "a");
    expect(again.digest).toBe(a.digest);
    expect(lstatSync(path).isDirectory()).toBe(true);
    expect(store.lookup(a.key)?.digest).toBe(a.digest);
  });

  it("with verifyTrees, a look-up digests each tree once; a corrupt one is removed and reported", async () => {
    const root = temp();
    const plain = openStore(root);
    const good = await commit(plain, "c".repeat(64), "good");
    const bad = await commit(plain, "d".repeat(64), "bad");
    const file = join(plain.treePath(bad.digest), "etc/file");
    writeFileSync(file, "tampered");
    expect(plain.lookup(bad.key)).toBeTruthy(); // without verifying, only the lstat: the damage is not seen
    const reported: Array<[string, string]> = [];
    const verifying = openStore(root, { verifyTrees: true, onCorruptTree: (tree) => reported.push([tree.name ?? "?", tree.actual]) });
    expect(verifying.lookup(good.key)?.digest).toBe(good.digest);
    expect(verifying.lookup(bad.key)).toBeUndefined();
    expect(reported).toHaveLength(1);
    expect(reported[0]![0]).toBe("layer-d");
    expect(reported[0]![1]).toMatch(/^[0-9a-f]{64}$/);
    expect(reported[0]![1]).not.toBe(bad.digest);
    expect(plain.hasTree(bad.digest)).toBe(false);
    expect(readdirSync(join(root, "tmp"))).toEqual([]);
    // Sound trees are digested once per process: a change afterwards is not seen by this store.
    writeFileSync(join(verifying.treePath(good.digest), "etc/file"), "changed later");
    expect(verifying.lookup(good.key)).toBeTruthy();
  });

  it("with verifyTrees, hasTree digests too, and a commit replaces a corrupt tree of the same digest", async () => {
    const root = temp();
    const plain = openStore(root);
    const record = await commit(plain, "e".repeat(64), "content");
    writeFileSync(join(plain.treePath(record.digest), "etc/file"), "tampered");
    const found: string[] = [];
    const verifying = openStore(root, { verifyTrees: true, onCorruptTree: (tree) => found.push(tree.digest) });
    // What a pull or a local source does: the tree is there, so only the record is written.
    expect(verifying.hasTree(record.digest)).toBe(false);
    expect(found).toEqual([record.digest]);
    // Committed again (rebuilt): placed anew, sound.
    const again = await commit(verifying, "e".repeat(64), "content");
    expect(again.digest).toBe(record.digest);
    expect(verifying.lookup(record.key)).toBeTruthy();
    expect(openStore(root, { verifyTrees: true }).hasTree(record.digest)).toBe(true);
  });
});
