// Tests for a build's optimistic claim on the store: no lock while no prune runs, the prune
// generation seen to move when one ran, a prune that is running (or died) making the claim wait
// for the lock, and run(): a pass a prune overtook is run again under the lock, then the root. Real stores in temp dirs, real prunes and real file locks.

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { acquireLock, openStore, pruneGeneration, pruneStore, readRoots, removeTree, type KeyRecord, type WriteGuard } from "../src/index";

const temps: string[] = [];
function store() {
  const dir = mkdtempSync(join(tmpdir(), "castle-claim-"));
  temps.push(dir);
  return openStore(dir);
}
afterEach(() => {
  for (const dir of temps.splice(0)) removeTree(dir);
});

const settledWithin = (promise: Promise<unknown>, ms: number) =>
  Promise.race([promise.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))]);

describe("StoreClaim", () => {
  it("takes no lock while no prune runs, and sees one that ran", async () => {
    const s = store();
    const claim = s.claim();
    expect(claim.optimistic).toBe(true);
    // Another holder has the lock exclusively: an optimistic claim does not wait for it.
    const other = await acquireLock(join(s.dir("locks"), "store.lock"));
    expect(claim.unpruned()).toBe(true);
    await other.release();
    await pruneStore(s, { keepForMs: 0 });
    expect(pruneGeneration(s)).toBe(2);
    expect(claim.unpruned()).toBe(false);
    expect(s.claim().unpruned()).toBe(true);
    await claim.release();
  });

  it("counts a dry run as no prune", async () => {
    const s = store();
    const claim = s.claim();
    await pruneStore(s, { keepForMs: 0, dryRun: true });
    expect(claim.unpruned()).toBe(true);
  });

  it("waits for the lock when a prune is running or died half-way", async () => {
    const s = store();
    // What a running prune looks like: the lock held exclusively, the generation odd.
    const prune = await acquireLock(join(s.dir("locks"), "store.lock"));
    writeFileSync(join(s.dir("locks"), "prune-generation"), "3\n");
    const claim = s.claim();
    expect(claim.optimistic).toBe(false);
    expect(claim.unpruned()).toBe(false);
    expect(await settledWithin(claim.hold(), 300)).toBe(false);
    await prune.release();
    expect(await settledWithin(claim.hold(), 5000)).toBe(true);
    await claim.release();
    // The next prune leaves the generation even again, past the one that died.
    await pruneStore(s, {});
    expect(pruneGeneration(s)).toBe(4);
    expect(s.claim().optimistic).toBe(true);
  });
});

describe("StoreClaim.run", () => {
  const used: KeyRecord[] = [];

  it("runs a pass that met no prune once, and records the system's root", async () => {
    const s = store();
    const guards: WriteGuard[] = [];
    const out = await s.claim().run("sys", async (guard) => {
      guards.push(guard);
      await guard.beforeWrite();
      return { used, value: 1 };
    });
    expect(out.value).toBe(1);
    expect(guards.length).toBe(1);
    expect(readRoots(s).map((r) => r.system)).toEqual(["sys"]);
  });

  it("runs a pass again, under the lock, when a prune ran before its first write", async () => {
    const s = store();
    const guards: WriteGuard[] = [];
    const out = await s.claim().run("sys", async (guard) => {
      guards.push(guard);
      if (guards.length === 1) await pruneStore(s, { keepForMs: 0 });
      await guard.beforeWrite();
      return { used, pass: guards.length };
    });
    expect(out.pass).toBe(2);
    expect(guards[0]!.overtaken).toBe(true);
    expect(guards[1]!.overtaken).toBe(false);
    // The claim held the lock through the second pass: a prune started now had to wait for it.
    expect(pruneGeneration(s)).toBe(2);
  });

  it("runs a fully cached pass again when a prune started before its root was written", async () => {
    const s = store();
    let passes = 0;
    const out = await s.claim().run("sys", async () => {
      passes++;
      if (passes === 1) await pruneStore(s, { keepForMs: 0 });
      return { used, pass: passes };
    });
    expect(out.pass).toBe(2);
    expect(readRoots(s).map((r) => r.system)).toEqual(["sys"]);
  });

  it("passes a pass's own failure on, without another pass, and releases the lock", async () => {
    const s = store();
    let passes = 0;
    await expect(s.claim().run("sys", async (guard) => {
      passes++;
      await guard.beforeWrite();
      throw new Error("the build failed");
    })).rejects.toThrow("the build failed");
    expect(passes).toBe(1);
    expect(readRoots(s)).toEqual([]);
    // The shared lock is released: a prune does not wait.
    expect(await settledWithin(pruneStore(s, { keepForMs: 0 }), 5000)).toBe(true);
  });
});
