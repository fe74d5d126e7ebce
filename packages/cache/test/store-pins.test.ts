// Tests for pins (store/pins.ts) and how prune honours them: a live process's pin keeps its layers
// under every prune option, the size limit included; the pin of a dead process protects nothing
// and is removed. Real files in temp dirs and real child processes.

import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openStore, pinLayers, processLives, processStart, pruneStore, readPins, recordRoot, removeTree, type KeyRecord } from "../src/index";

const temps: string[] = [];
function temp(): string {
  const dir = mkdtempSync(join(tmpdir(), "castle-pins-"));
  temps.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of temps.splice(0)) removeTree(dir);
});

async function commit(store: ReturnType<typeof openStore>, key: string, bytes: number): Promise<KeyRecord> {
  const staging = await store.stage("p");
  writeFileSync(join(staging.tree, "f"), key[0]!.repeat(bytes));
  return store.commit(staging, key, { name: `n${key[0]}`, buildMs: 0, origin: "built" });
}

/** The pid of a process that has exited. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout);
}

describe("processStart and processLives", () => {
  it("know this process, and not one that has exited", () => {
    const start = processStart(process.pid);
    expect(start).toBeGreaterThan(0);
    expect(processLives(process.pid, start!)).toBe(true);
    expect(processLives(process.pid, start! + 1)).toBe(false); // a reused pid: another start time
    const dead = deadPid();
    expect(processStart(dead)).toBeUndefined();
    expect(processLives(dead, 0)).toBe(false);
  });
});

describe("pins", () => {
  it("name what a live process holds until released; writing nothing before hold()", async () => {
    const store = openStore(temp());
    const a = await commit(store, "a".repeat(64), 10);
    const pin = pinLayers(store);
    expect(readdirSync(store.dir("pins"))).toEqual([]);
    pin.hold([a]);
    expect(readPins(store)).toEqual({ keys: new Set([a.key]), digests: new Set([a.digest]) });
    pin.release();
    pin.release();
    expect(readdirSync(store.dir("pins"))).toEqual([]);
  });

  it("of a dead process protect nothing and are removed when read", async () => {
    const store = openStore(temp());
    const a = await commit(store, "a".repeat(64), 10);
    writeFileSync(join(store.dir("pins"), "1-0.json"), JSON.stringify({ pid: deadPid(), pidStart: 1, keys: [a.key], digests: [a.digest] }));
    writeFileSync(join(store.dir("pins"), "2-0.json"), JSON.stringify({ pid: process.pid, pidStart: 1, keys: [a.key], digests: [a.digest] }));
    expect(readPins(store)).toEqual({ keys: new Set(), digests: new Set() });
    expect(readdirSync(store.dir("pins"))).toEqual([]);
  });

  it("keep their layers through a prune of any kind: --keep-days 0, --max-size 0, both", async () => {
    const store = openStore(temp());
    const held = await commit(store, "1".repeat(64), 100);
    const other = await commit(store, "2".repeat(64), 100);
    const old = await commit(store, "3".repeat(64), 100);
    recordRoot(store, "sys", [held, other]);
    const pin = pinLayers(store);
    pin.hold([held]);
    for (const options of [{ keepForMs: 0, now: Date.now() + 1000 }, { maxBytes: 0 }, { keepForMs: 0, maxBytes: 0, now: Date.now() + 1000 }]) {
      const result = await pruneStore(store, options);
      expect(store.lookup(held.key), JSON.stringify(options)).toBeTruthy();
      expect(result.heldBytes).toBe(100);
      expect(result.keptBytes).toBeGreaterThanOrEqual(100);
    }
    expect(store.lookup(other.key)).toBeUndefined();
    expect(store.lookup(old.key)).toBeUndefined();
    pin.release();
    await pruneStore(store, { maxBytes: 0 });
    expect(store.lookup(held.key)).toBeUndefined();
  });

  it("keep a tree even when no record points at it any more", async () => {
    const store = openStore(temp());
    const a = await commit(store, "a".repeat(64), 10);
    const pin = pinLayers(store);
    pin.hold([a]);
    removeTree(store.recordPath(a.key));
    await pruneStore(store, { keepForMs: 0 });
    expect(store.hasTree(a.digest)).toBe(true);
    pin.release();
    await pruneStore(store, { keepForMs: 0 });
    expect(store.hasTree(a.digest)).toBe(false);
  });

  it("count towards the size limit: what is not held goes first, least recently used first", async () => {
    const store = openStore(temp());
    const held = await commit(store, "1".repeat(64), 100);
    const older = await commit(store, "2".repeat(64), 100);
    const newer = await commit(store, "3".repeat(64), 100);
    recordRoot(store, "old", [older]);
    await new Promise((r) => setTimeout(r, 5));
    recordRoot(store, "new", [newer]);
    const pin = pinLayers(store);
    pin.hold([held]);
    const result = await pruneStore(store, { maxBytes: 200 });
    expect(result).toMatchObject({ removedRecords: 1, keptBytes: 200, heldBytes: 100 });
    expect(store.lookup(older.key)).toBeUndefined();
    expect(store.lookup(newer.key)).toBeTruthy();
    pin.release();
  });
});
