// Tests for a build's optimistic claim on the store: no lock while no prune runs, the prune
// generation seen to move when one ran, and a prune that is running (or died) making the claim
// wait for the lock. Real stores in temp dirs, real prunes and real file locks.

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { acquireLock, openStore, pruneGeneration, pruneStore, removeTree, StoreClaim } from "../src/index";

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
    const claim = new StoreClaim(s);
    expect(claim.optimistic).toBe(true);
    // Another holder has the lock exclusively: an optimistic claim does not wait for it.
    const other = await acquireLock(join(s.dir("locks"), "store.lock"));
    expect(claim.unpruned()).toBe(true);
    await other.release();
    await pruneStore(s, { keepForMs: 0 });
    expect(pruneGeneration(s)).toBe(2);
    expect(claim.unpruned()).toBe(false);
    expect(new StoreClaim(s).unpruned()).toBe(true);
    await claim.release();
  });

  it("counts a dry run as no prune", async () => {
    const s = store();
    const claim = new StoreClaim(s);
    await pruneStore(s, { keepForMs: 0, dryRun: true });
    expect(claim.unpruned()).toBe(true);
  });

  it("waits for the lock when a prune is running or died half-way", async () => {
    const s = store();
    // What a running prune looks like: the lock held exclusively, the generation odd.
    const prune = await acquireLock(join(s.dir("locks"), "store.lock"));
    writeFileSync(join(s.dir("locks"), "prune-generation"), "3\n");
    const claim = new StoreClaim(s);
    expect(claim.optimistic).toBe(false);
    expect(claim.unpruned()).toBe(false);
    expect(await settledWithin(claim.hold(), 300)).toBe(false);
    await prune.release();
    expect(await settledWithin(claim.hold(), 5000)).toBe(true);
    await claim.release();
    // The next prune leaves the generation even again, past the one that died.
    await pruneStore(s, {});
    expect(pruneGeneration(s)).toBe(4);
    expect(new StoreClaim(s).optimistic).toBe(true);
  });
});
