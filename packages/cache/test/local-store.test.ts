// Tests for the local store: digests, atomic commits, damaged records and cross-process locks,
// on real files in temp dirs.

import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { acquireLock, applyOverlayMarks, digestTree, openStore, pruneStore, recordRoot, useStore, removeTree, treeutilPath, unpackTree, verifyStore, withLock } from "../src/index";

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

describe("commit with the unpacker's digest", () => {
  /** A gzip tar of one file, made by hand (ustar, Castle's order). */
  function archiveOf(name: string, body: string): Readable {
    const header = Buffer.alloc(512);
    header.write(name, 0);
    header.write("0000644\0", 100);
    header.write("0000000\0", 108);
    header.write("0000000\0", 116);
    header.write(`${body.length.toString(8).padStart(11, "0")}\0`, 124);
    header.write("00000000000\0", 136);
    header.write("        ", 148);
    header.write("0", 156);
    header.write("ustar\u000000", 257, "latin1");
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
    const data = Buffer.alloc(512);
    data.write(body);
    return Readable.from([gzipSync(Buffer.concat([header, data, Buffer.alloc(1024)]))]);
  }

  it("takes it for the tree it was computed for, once, and digests anything else from disk", async () => {
    const store = openStore(temp());
    const a = await store.stage("a");
    const unpacked = await unpackTree(archiveOf("f", "one"), a.tree, { digest: true });
    expect(unpacked.treeDigest?.digest).toBe(digestTree(a.tree).digest);
    // Handed with another staging tree: ignored, that tree is digested.
    const b = await store.stage("b");
    writeFileSync(join(b.tree, "f"), "two");
    const other = await store.commit(b, "b".repeat(64), { name: "b", buildMs: 0, origin: "pulled", treeDigest: unpacked.treeDigest });
    expect(other.digest).toBe(digestTree(store.treePath(other.digest)).digest);
    expect(other.digest).not.toBe(unpacked.treeDigest?.digest);
    // A made-up value is ignored too, however it looks.
    const c = await store.stage("c");
    writeFileSync(join(c.tree, "f"), "three");
    const forged = { digest: "0".repeat(64), bytes: 5, entries: 1, root: c.tree };
    const real = await store.commit(c, "c".repeat(64), { name: "c", buildMs: 0, origin: "pulled", treeDigest: forged });
    expect(real.digest).toBe(digestTree(store.treePath(real.digest)).digest);
    // Its own tree: taken (a tree unpacked by this process, then changed by it, shows it is).
    writeFileSync(join(a.tree, "f"), "changed after unpacking");
    const trusted = await store.commit(a, "a".repeat(64), { name: "a", buildMs: 0, origin: "pulled", treeDigest: unpacked.treeDigest });
    expect(trusted).toMatchObject({ digest: unpacked.treeDigest?.digest, bytes: 3, entries: 1 });
  });

  it("still refuses a tree whose digest is not the expected one", async () => {
    const store = openStore(temp());
    const staging = await store.stage("x");
    const unpacked = await unpackTree(archiveOf("f", "one"), staging.tree, { digest: true });
    await expect(
      store.commit(staging, "d".repeat(64), { name: "x", buildMs: 0, origin: "pulled", expectDigest: "0".repeat(64), treeDigest: unpacked.treeDigest }),
    ).rejects.toMatchObject({ code: "CASTLE_DIGEST_MISMATCH" });
    expect(readdirSync(join(store.root, "trees"))).toEqual([]);
    expect(readdirSync(join(store.root, "tmp"))).toEqual([]);
  });

  it("commits many trees at once, all durable before they are placed", async () => {
    const store = openStore(temp());
    const records = await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const staging = await store.stage(`m${i}`);
        writeFileSync(join(staging.tree, "f"), `content ${i}`);
        return store.commit(staging, i.toString(16).padStart(64, "e"), { name: `m${i}`, buildMs: 0, origin: "built" });
      }),
    );
    expect(new Set(records.map((r) => r.digest)).size).toBe(12);
    for (const record of records) expect(store.lookup(record.key)?.digest).toBe(record.digest);
    expect(readdirSync(join(store.root, "tmp"))).toEqual([]);
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
  it("is released at once when a process holding it through castle-treeutil serve is killed", async () => {
    const file = join(temp(), "s.lock");
    // The holder speaks the helper's protocol itself: request 1 = lock <file> ex.
    const holder = spawn(
      process.execPath,
      ["-e", `const c=require("child_process").spawn(${JSON.stringify(treeutilPath())},["serve"],{stdio:["pipe","pipe","inherit"]});let out="";c.stdout.on("data",(d)=>{out+=d;if(out.includes("1\\0ok"))console.log("held")});c.stdin.write("1\\0lock\\0"+"2\\0"+${JSON.stringify(file)}+"\\0ex\\0");setInterval(()=>{},1000)`],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    await new Promise<void>((resolve) => holder.stdout!.once("data", () => resolve()));
    let waited = false;
    const taking = withLock(file, async () => undefined, { onWait: () => (waited = true), waitNoticeMs: 50 });
    await new Promise((r) => setTimeout(r, 300));
    expect(waited).toBe(true);
    holder.kill("SIGKILL");
    const started = Date.now();
    await taking;
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("lets shared holders in together, never beside an exclusive one", async () => {
    const file = join(temp(), "sh.lock");
    const a = await acquireLock(file, { shared: true });
    const b = await acquireLock(file, { shared: true });
    let exclusive = false;
    const taking = acquireLock(file).then((held) => ((exclusive = true), held));
    await new Promise((r) => setTimeout(r, 200));
    expect(exclusive).toBe(false);
    await a.release();
    await new Promise((r) => setTimeout(r, 100));
    expect(exclusive).toBe(false);
    await b.release();
    await (await taking).release();
    expect(exclusive).toBe(true);
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
    const longAgo = new Date(Date.now() - 40 * 86400e3);
    writeFileSync(rootFile, JSON.stringify({ ...root, usedAt: longAgo.toISOString() }));
    utimesSync(rootFile, longAgo, longAgo);
    const result = await pruneStore(store, { keepForMs: 30 * 86400e3 });
    expect(result).toMatchObject({ removedRecords: 2, removedTrees: 2 });
    expect(store.lookup(used.key)).toBeTruthy();
    expect(store.lookup(stale.key)).toBeUndefined();
    expect(store.hasTree(old.digest)).toBe(false);
  });

  it("touches a root that names the same layers again, and counts the touch as a use", async () => {
    const store = openStore(temp());
    const layer = await commitSample(store, "6".repeat(64), "six");
    const other = await commitSample(store, "7".repeat(64), "seven");
    recordRoot(store, "sys", [layer]);
    const rootFile = join(store.dir("roots"), "sys.json");
    const longAgo = new Date(Date.now() - 40 * 86400e3);
    utimesSync(rootFile, longAgo, longAgo);
    const written = readFileSync(rootFile, "utf8");
    recordRoot(store, "sys", [layer]);
    expect(readFileSync(rootFile, "utf8")).toBe(written);
    expect(statSync(rootFile).mtimeMs).toBeGreaterThan(Date.now() - 60_000);
    expect(await pruneStore(store, { keepForMs: 86400e3 })).toMatchObject({ removedRecords: 1 });
    expect(store.lookup(layer.key)).toBeTruthy();
    // Other layers: the root is written anew.
    recordRoot(store, "sys", [other]);
    expect(JSON.parse(readFileSync(rootFile, "utf8")).keys).toEqual([other.key]);
  });

  it("evicts least recently used layers to fit a size limit", async () => {
    const store = openStore(temp());
    const a = await commitSample(store, "4".repeat(64), "a".repeat(100));
    const b = await commitSample(store, "5".repeat(64), "b".repeat(100));
    recordRoot(store, "sysA", [a]);
    await new Promise((r) => setTimeout(r, 5));
    recordRoot(store, "sysB", [b]);
    await pruneStore(store, { maxBytes: 150 });
    expect(store.lookup(a.key)).toBeUndefined();
    expect(store.lookup(b.key)).toBeTruthy();
  });

  it("keeps the layers of systems named as running, however old their roots", async () => {
    const store = openStore(temp());
    const running = await commitSample(store, "8".repeat(64), "running");
    const gone = await commitSample(store, "9".repeat(64), "gone");
    recordRoot(store, "shell", [running]);
    recordRoot(store, "done", [gone]);
    const result = await pruneStore(store, { keepForMs: 0, now: Date.now() + 1000, keepSystems: ["shell"] });
    expect(result).toMatchObject({ removedRecords: 1, removedTrees: 1 });
    expect(store.lookup(running.key)).toBeTruthy();
    expect(store.lookup(gone.key)).toBeUndefined();
  });

  it("waits for builds that hold the store, and builds wait for a prune", async () => {
    const store = openStore(temp());
    const fresh = await commitSample(store, "a".repeat(64), "made by a build that has not recorded its root yet");
    const build = await useStore(store);
    let waited = false;
    const prune = pruneStore(store, { keepForMs: 60_000, onWait: () => (waited = true) });
    await new Promise((r) => setTimeout(r, 400));
    expect(waited).toBe(true);
    expect(store.lookup(fresh.key)).toBeTruthy();
    // The build records its root as it ends; the prune then keeps what it used.
    recordRoot(store, "sys", [fresh]);
    await build.release();
    await prune;
    expect(store.lookup(fresh.key)).toBeTruthy();
    // Now a prune holds the store: a build waits for it.
    const holder = await acquireLock(join(store.dir("locks"), "store.lock"));
    let buildWaited = false;
    const next = useStore(store, () => (buildWaited = true));
    await new Promise((r) => setTimeout(r, 1300)); // the notice comes after a second
    expect(buildWaited).toBe(true);
    await holder.release();
    await (await next).release();
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
