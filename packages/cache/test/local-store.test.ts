// Tests for the local store: digests, atomic commits, damaged records and cross-process locks,
// on real files in temp dirs.

import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { applyOverlayMarks, digestTree, openStore, pruneStore, recordRoot, removeTree, treeutilPath, verifyStore, withLock } from "../src/index";

const temps: string[] = [];
function temp(): string {
  const dir = mkdtempSync(join(tmpdir(), "castle-store-"));
  temps.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of temps.splice(0)) removeTree(dir);
});

function writeSample(root: string): void {
  mkdirSync(join(root, "usr/bin"), { recursive: true });
  writeFileSync(join(root, "usr/bin/tool"), "#!/bin/sh\necho hi\n", { mode: 0o755 });
  writeFileSync(join(root, "usr/readme"), "hello");
  symlinkSync("usr/bin", join(root, "bin"));
}

describe("digestTree", () => {
  it("is the same for equal trees and ignores mtimes", () => {
    const a = temp();
    const b = temp();
    writeSample(a);
    writeSample(b);
    utimesSync(join(b, "usr/readme"), 1000, 1000);
    expect(digestTree(a).digest).toBe(digestTree(b).digest);
    expect(digestTree(a)).toMatchObject({ bytes: 5 + 18, entries: 5 });
  });

  it("changes with content, mode, link target, whiteouts and opaque dirs", () => {
    const root = temp();
    writeSample(root);
    const seen = new Set([digestTree(root).digest]);
    writeFileSync(join(root, "usr/readme"), "hellO");
    seen.add(digestTree(root).digest);
    chmodSync(join(root, "usr/readme"), 0o600);
    seen.add(digestTree(root).digest);
    removeTree(join(root, "bin"));
    symlinkSync("usr/sbin", join(root, "bin"));
    seen.add(digestTree(root).digest);
    applyOverlayMarks(root, [{ op: "w", path: "usr/gone" }]);
    seen.add(digestTree(root).digest);
    applyOverlayMarks(root, [{ op: "o", path: "usr/bin" }]);
    seen.add(digestTree(root).digest);
    expect(seen.size).toBe(6);
  });
});

describe("LocalStore", () => {
  it("commits a staged tree atomically and finds it by key", async () => {
    const store = openStore(temp());
    const staging = await store.stage("sample");
    writeSample(staging.tree);
    const key = "a".repeat(64);
    const record = await store.commit(staging, key, { name: "sample", buildMs: 5, origin: "built" });
    expect(record.digest).toBe(digestTree(store.treePath(record.digest)).digest);
    expect(store.lookup(key)).toMatchObject({ key, name: "sample", digest: record.digest });
    expect(existsSync(staging.dir)).toBe(false);
    expect(readdirSync(join(store.root, "tmp"))).toEqual([]);
  });

  it("stores equal trees once, under one digest", async () => {
    const store = openStore(temp());
    const digests = [];
    for (const key of ["1".repeat(64), "2".repeat(64)]) {
      const staging = await store.stage("x");
      writeSample(staging.tree);
      digests.push((await store.commit(staging, key, { name: "x", buildMs: 0, origin: "built" })).digest);
    }
    expect(digests[0]).toBe(digests[1]);
    expect(readdirSync(join(store.root, "trees"))).toHaveLength(1);
  });

  it("leaves nothing behind when the digest is not the expected one", async () => {
    const store = openStore(temp());
    const staging = await store.stage("bad");
    writeSample(staging.tree);
    const key = "b".repeat(64);
    await expect(
      store.commit(staging, key, { name: "bad", buildMs: 0, origin: "pulled", expectDigest: "0".repeat(64) }),
    ).rejects.toMatchObject({ code: "CASTLE_DIGEST_MISMATCH" });
    expect(store.lookup(key)).toBeUndefined();
    expect(readdirSync(join(store.root, "trees"))).toEqual([]);
    expect(readdirSync(join(store.root, "tmp"))).toEqual([]);
  });

  it("treats a damaged record or a missing tree as absent", async () => {
    const store = openStore(temp());
    const key = "c".repeat(64);
    writeFileSync(store.recordPath(key), "{ not json");
    expect(store.lookup(key)).toBeUndefined();
    const staging = await store.stage("t");
    writeSample(staging.tree);
    const record = await store.commit(staging, key, { name: "t", buildMs: 0, origin: "built" });
    removeTree(store.treePath(record.digest));
    expect(store.lookup(key)).toBeUndefined();
    expect(existsSync(store.recordPath(key))).toBe(false);
  });
});

describe("stale staging", () => {
  it("removes what dead processes left in tmp/ and keeps live ones", async () => {
    const store = openStore(temp());
    const live = await store.stage("live");
    const dead = join(store.root, "tmp", "gone-999999999-0123abcd");
    mkdirSync(join(dead, "tree/sub"), { recursive: true });
    chmodSync(join(dead, "tree/sub"), 0o500);
    expect(store.removeStaleStaging()).toBe(1);
    expect(readdirSync(join(store.root, "tmp"))).toEqual([live.dir.split("/").pop()]);
  });
});

describe("file locks", () => {
  it("serialises holders in one process", async () => {
    const file = join(temp(), "l.lock");
    const order: string[] = [];
    const hold = (name: string) =>
      withLock(file, async () => {
        order.push(`${name}+`);
        await new Promise((r) => setTimeout(r, 50));
        order.push(`${name}-`);
      });
    await Promise.all([hold("a"), hold("b")]);
    expect(order).toEqual(["a+", "a-", "b+", "b-"]);
  });

  it("is released at once when its holder is killed with SIGKILL", async () => {
    const file = join(temp(), "k.lock");
    // A separate process takes the lock through castle-treeutil, then is killed.
    const holder = spawn(
      process.execPath,
      ["-e", `const c=require("child_process").spawn(${JSON.stringify(treeutilPath())},["lock",${JSON.stringify(file)}],{stdio:["pipe","pipe","inherit"]});c.stdout.on("data",()=>console.log("held"));setInterval(()=>{},1000)`],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    await new Promise<void>((resolve) => holder.stdout!.once("data", () => resolve()));
    holder.kill("SIGKILL");
    const started = Date.now();
    await withLock(file, async () => undefined);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe("prune and verify", () => {
  async function commitSample(store: ReturnType<typeof openStore>, key: string, content: string) {
    const staging = await store.stage("s");
    writeFileSync(join(staging.tree, "f"), content);
    return store.commit(staging, key, { name: `n${key[0]}`, buildMs: 1, origin: "built" });
  }

  it("keeps what recently used systems need and removes the rest", async () => {
    const store = openStore(temp());
    const used = await commitSample(store, "1".repeat(64), "one");
    const stale = await commitSample(store, "2".repeat(64), "two");
    const old = await commitSample(store, "3".repeat(64), "three");
    recordRoot(store, "fresh", [used]);
    recordRoot(store, "old", [old]);
    const rootFile = join(store.dir("roots"), "old.json");
    const root = JSON.parse(readFileSync(rootFile, "utf8"));
    writeFileSync(rootFile, JSON.stringify({ ...root, usedAt: new Date(Date.now() - 40 * 86400e3).toISOString() }));
    const result = pruneStore(store, { keepForMs: 30 * 86400e3 });
    expect(result).toMatchObject({ removedRecords: 2, removedTrees: 2 });
    expect(store.lookup(used.key)).toBeTruthy();
    expect(store.lookup(stale.key)).toBeUndefined();
    expect(store.hasTree(old.digest)).toBe(false);
  });

  it("evicts least recently used layers to fit a size limit", async () => {
    const store = openStore(temp());
    const a = await commitSample(store, "4".repeat(64), "a".repeat(100));
    const b = await commitSample(store, "5".repeat(64), "b".repeat(100));
    recordRoot(store, "sysA", [a]);
    await new Promise((r) => setTimeout(r, 5));
    recordRoot(store, "sysB", [b]);
    pruneStore(store, { maxBytes: 150 });
    expect(store.lookup(a.key)).toBeUndefined();
    expect(store.lookup(b.key)).toBeTruthy();
  });

  it("finds a tree whose files were changed and removes it with its records", async () => {
    const store = openStore(temp());
    const good = await commitSample(store, "6".repeat(64), "good");
    const bad = await commitSample(store, "7".repeat(64), "bad");
    writeFileSync(join(store.treePath(bad.digest), "f"), "tampered");
    const result = verifyStore(store);
    expect(result).toMatchObject({ checked: 2, corrupt: [bad.digest], removedRecords: 1 });
    expect(store.lookup(bad.key)).toBeUndefined();
    expect(store.lookup(good.key)).toBeTruthy();
  });
});
