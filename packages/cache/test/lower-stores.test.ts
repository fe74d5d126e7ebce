// Tests for a store's read-only lower tiers (the outer stores a nested Castle reads): look-ups
// fall through to them, their trees are used in place, a record pointing at a lower tree stays
// valid, a prune never touches them, and a build cache starts from a lower tier's copy with its
// timestamps. Real stores in temp dirs; the lower one is made read-only where the test can.

import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { LowerStores, lowerStoreRoots, openStore, pruneStore, recordRoot, removeTree, type LocalStore } from "../src/index";

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
    expect(lowers.lookup(KEY_B, () => false)?.digest).toBe(digest);
    const inner = openStore(join(temp(), "inner"), { lowers: [near.root] });
    expect(inner.lookup(KEY_B)).toBeUndefined(); // far is not one of its tiers: the tree is nowhere
    expect(existsSync(near.recordPath(KEY_B))).toBe(true); // and a lower tier's record is never removed
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
