// Tests for a store's read-only lower tiers (the outer stores a nested Castle reads): look-ups
// fall through to them, their trees are used in place, a record pointing at a lower tree stays
// valid, a prune never touches them, a prune of the lower tier counts what the stores above it
// use, and a build cache starts from a lower tier's copy with its timestamps. Real stores in temp dirs; the lower one is made read-only where the test can.

import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { LowerStores, lowerStoreRoots, openStore, pinLayers, pruneStore, recordRoot, removeTree, type LocalStore } from "../src/index";

const temps: string[] = [];
function temp(): string {
  const dir = mkdtempSync(join(tmpdir(), "castle-lower-"));
  temps.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of temps.splice(0)) {
    chmodSync(dir, 0o755);
    removeTree(dir);
  }
});

const KEY_A = "a".repeat(64);
const KEY_B = "b".repeat(64);

async function commitTree(store: LocalStore, key: string, files: Record<string, string>): Promise<string> {
  const staging = await store.stage("t");
  for (const [name, content] of Object.entries(files)) writeFileSync(join(staging.tree, name), content);
  return (await store.commit(staging, key, { name: `layer-${key[0]}`, buildMs: 1, origin: "built" })).digest;
}

describe("lowerStoreRoots", () => {
  it("reads absolute paths from CASTLE_STORE_LOWERS, nearest first", () => {
    expect(lowerStoreRoots({ CASTLE_STORE_LOWERS: "/.castle/stores/0:/.castle/stores/1" })).toEqual(["/.castle/stores/0", "/.castle/stores/1"]);
    expect(lowerStoreRoots({ CASTLE_STORE_LOWERS: "relative::/abs" })).toEqual(["/abs"]);
    expect(lowerStoreRoots({})).toEqual([]);
  });
});

describe("a store with lower tiers", () => {
  it("finds what only a lower tier has, and uses its tree in place", async () => {
    const outer = openStore(join(temp(), "outer"));
    const digest = await commitTree(outer, KEY_A, { f: "outer" });
    const inner = openStore(join(temp(), "inner"), { lowers: [outer.root] });
    const record = inner.lookup(KEY_A);
    expect(record?.digest).toBe(digest);
    expect(inner.hasTree(digest)).toBe(true);
    expect(inner.treePath(digest)).toBe(join(outer.root, "trees", digest));
    expect(inner.localTreePath(digest)).toBe(join(inner.root, "trees", digest));
    expect(inner.lookup(KEY_B)).toBeUndefined();
    // A build of the same content records it without a second copy of the tree.
    const same = await commitTree(inner, KEY_B, { f: "outer" });
    expect(same).toBe(digest);
    expect(inner.lookup(KEY_B)?.digest).toBe(digest);
    expect(existsSync(inner.localTreePath(digest))).toBe(false);
    // New content is its own.
    const own = await commitTree(inner, "c".repeat(64), { f: "inner" });
    expect(inner.treePath(own)).toBe(join(inner.root, "trees", own));
  });

  it("keeps its own record of a tree that only a lower tier holds", async () => {
    const outer = openStore(join(temp(), "outer"));
    const digest = await commitTree(outer, KEY_A, { f: "x" });
    const inner = openStore(join(temp(), "inner"), { lowers: [outer.root] });
    inner.link(KEY_B, digest, { name: "linked", buildMs: 0, origin: "built" });
    expect(inner.lookup(KEY_B)?.digest).toBe(digest);
    expect(existsSync(inner.recordPath(KEY_B))).toBe(true);
    // Without the lower tier the record points at nothing and is forgotten, as before.
    expect(openStore(inner.root).lookup(KEY_B)).toBeUndefined();
  });

  it("searches several tiers in order and skips a record whose tree is nowhere", async () => {
    const far = openStore(join(temp(), "far"));
    const near = openStore(join(temp(), "near"), { lowers: [far.root] });
    const digest = await commitTree(far, KEY_A, { f: "far" });
    // near's record points at far's tree: valid through the chain.
    near.link(KEY_B, digest, { name: "b", buildMs: 0, origin: "built" });
    const lowers = new LowerStores([near.root, far.root]);
    expect(lowers.lookup(KEY_B, (r) => lowers.treePath(r.digest) !== undefined)?.digest).toBe(digest);
    const inner = openStore(join(temp(), "inner"), { lowers: [near.root] });
    expect(inner.lookup(KEY_B)).toBeUndefined(); // far is not one of its tiers: the tree is nowhere
    expect(existsSync(near.recordPath(KEY_B))).toBe(true); // and a lower tier's record is never removed
  });

  it("with verifyTrees, checks a lower tier's trees too: a corrupt one is reported, left there, and not used", async () => {
    const outer = openStore(join(temp(), "outer"));
    const digest = await commitTree(outer, KEY_A, { f: "a" });
    const sound = await commitTree(outer, KEY_B, { f: "b" });
    const lowerTree = join(outer.root, "trees", digest);
    chmodSync(lowerTree, 0o755);
    writeFileSync(join(lowerTree, "f"), "tampered");
    const seen: { digest: string; lower?: string; name?: string }[] = [];
    const inner = openStore(join(temp(), "inner"), { lowers: [outer.root], verifyTrees: true, onCorruptTree: (t) => seen.push(t) });
    expect(inner.lookup(KEY_A)).toBeUndefined();
    expect(seen).toEqual([{ digest, actual: expect.stringMatching(/^[0-9a-f]{64}$/), lower: lowerTree, name: "layer-a" }]);
    expect(readFileSync(join(lowerTree, "f"), "utf8")).toBe("tampered"); // left where it is
    expect(inner.hasTree(digest)).toBe(false);
    expect(inner.treePath(digest)).toBe(inner.localTreePath(digest)); // never the corrupt one
    expect(inner.lookup(KEY_B)?.digest).toBe(sound);
    expect(inner.treePath(sound)).toBe(join(outer.root, "trees", sound));
    // Made again in the inner store, the same content is its own, and used.
    expect(await commitTree(inner, KEY_A, { f: "a" })).toBe(digest);
    expect(inner.lookup(KEY_A)?.digest).toBe(digest);
    expect(inner.treePath(digest)).toBe(inner.localTreePath(digest));
    expect(seen).toHaveLength(1);
    // Without verifyTrees the lower tree is used as it is (a look-up checks only that it is there).
    expect(openStore(join(temp(), "plain"), { lowers: [outer.root] }).lookup(KEY_A)?.digest).toBe(digest);
  });

  it("works on a read-only lower tier and never writes to it; a prune removes only its own trees", async () => {
    const base = temp();
    const outer = openStore(join(base, "outer"));
    const digest = await commitTree(outer, KEY_A, { f: "kept" });
    const inner = openStore(join(temp(), "inner"), { lowers: [outer.root] });
    inner.link(KEY_B, digest, { name: "b", buildMs: 0, origin: "built" });
    recordRoot(inner, "other", []);
    if (process.getuid?.() !== 0) chmodSync(outer.root, 0o555);
    const result = await pruneStore(inner, { keepForMs: 0 });
    expect(result.removedRecords).toBe(1);
    expect(readFileSync(join(outer.root, "trees", digest, "f"), "utf8")).toBe("kept");
    expect(outer.lookup(KEY_A)?.digest).toBe(digest);
  });

  it("a prune of the lower tier counts the roots and, while their system runs, the pins of the stores above", async () => {
    const DAY = 86400e3;
    const setUp = async () => {
      const outer = openStore(join(temp(), "outer"));
      const a = await commitTree(outer, KEY_A, { f: "a" });
      const b = await commitTree(outer, KEY_B, { f: "b" });
      const c = await commitTree(outer, "c".repeat(64), { f: "c" });
      const inner = openStore(join(temp(), "inner"), { lowers: [outer.root] });
      // The inner root names a (by the outer key) and c (under a key of the inner store's own).
      inner.link("d".repeat(64), c, { name: "d", buildMs: 0, origin: "built" });
      recordRoot(inner, "sys", [inner.lookup(KEY_A)!, inner.lookup("d".repeat(64))!]);
      return { outer, inner, a, b, c };
    };
    const trees = (store: LocalStore) => readdirSync(join(store.root, "trees")).sort();

    // Alone, the outer store keeps nothing (no root of its own names anything).
    const alone = await setUp();
    expect((await pruneStore(alone.outer, { keepForMs: DAY })).removedTrees).toBe(3);

    // The inner root was used now: a and c stay, by key and by digest; b goes.
    const recent = await setUp();
    await pruneStore(recent.outer, { keepForMs: DAY, nested: [{ root: recent.inner.root, running: false }] });
    expect(trees(recent.outer)).toEqual([recent.a, recent.c].sort());
    expect(recent.inner.lookup(KEY_A)?.digest).toBe(recent.a);
    expect(recent.inner.lookup("d".repeat(64))?.digest).toBe(recent.c);

    // Seen 2 days later, the inner root is as old as any: kept only while its system runs, and
    // then held (no size limit removes it), with what the inner pins name (b) too.
    const later = Date.now() + 2 * DAY;
    const old = await setUp();
    await pruneStore(old.outer, { keepForMs: DAY, now: later, dryRun: true, nested: [{ root: old.inner.root, running: false }] }).then((r) =>
      expect(r.removedTrees).toBe(3));
    const pin = pinLayers(old.inner);
    pin.hold([old.outer.lookup(KEY_B)!]);
    const held = await pruneStore(old.outer, { keepForMs: DAY, now: later, maxBytes: 0, nested: [{ root: old.inner.root, running: true }] });
    expect(held.removedTrees).toBe(0);
    expect(trees(old.outer)).toEqual([old.a, old.b, old.c].sort());
    // Pins of a system that is not running protect nothing (their processes are gone).
    await pruneStore(old.outer, { keepForMs: DAY, now: later, nested: [{ root: old.inner.root, running: false }] });
    expect(trees(old.outer)).toEqual([]);
    pin.release();
  });

  it("starts a build cache from a lower tier's copy, timestamps kept, and then keeps its own", () => {
    const outer = openStore(join(temp(), "outer"));
    const seed = outer.buildCache("obj");
    mkdirSync(join(seed, "sub"));
    writeFileSync(join(seed, "sub/a.o"), "object");
    utimesSync(join(seed, "sub/a.o"), 1_000_000, 1_000_000);
    const inner = openStore(join(temp(), "inner"), { lowers: [outer.root] });
    const own = inner.buildCache("obj");
    expect(own).toBe(join(inner.root, "build-caches", "obj"));
    expect(readFileSync(join(own, "sub/a.o"), "utf8")).toBe("object");
    expect(statSync(join(own, "sub/a.o")).mtimeMs).toBe(1_000_000_000);
    writeFileSync(join(own, "sub/a.o"), "changed inside");
    expect(readFileSync(join(seed, "sub/a.o"), "utf8")).toBe("object");
    expect(readFileSync(join(inner.buildCache("obj"), "sub/a.o"), "utf8")).toBe("changed inside");
    expect(readFileSync(join(inner.buildCache("fresh"), "..", "obj", "sub/a.o"), "utf8")).toBe("changed inside");
    expect(() => inner.buildCache("../escape")).toThrow(/bad build cache id/);
  });
});
