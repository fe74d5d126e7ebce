// Owns pins: the layers a live process is using right now, named in pins/<pid>-<n>.json for as
// long as it runs (a running system, an export reading trees). `cache prune` never removes a
// pinned layer or tree, whatever its options, and forgets the pins of processes that are gone.
// A run's pin is written as each pass of its build ends — before the claim records the root and
// checks that no prune started (see store-claim.ts) — so a prune either sees the pin or makes the
// run look everything up again (pinnedClaim).

import { readFileSync, readdirSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import type { KeyRecord, LayerKey, OutputDigest, Store, StoreClaim } from "../types";
import { writeFileAtomic } from "./local-store";
import { processLives, processStart } from "./process-start";

interface PinFile {
  pid: number;
  pidStart: number;
  keys: LayerKey[];
  digests: OutputDigest[];
}

/** A process's hold on the layers it uses, until released (or until it dies). */
export interface LayerPin {
  /** Names the layers now in use (replacing what the pin named before). */
  hold(records: readonly KeyRecord[]): void;
  /** Drops the pin; safe to call twice. */
  release(): void;
}

let pinsMade = 0;

/** A pin for this process; writes nothing until hold() is called. */
export function pinLayers(store: Store): LayerPin {
  const file = join(store.dir("pins"), `${process.pid}-${pinsMade++}.json`);
  let written = false;
  return {
    hold(records) {
      const pin: PinFile = {
        pid: process.pid,
        pidStart: processStart(process.pid) ?? 0,
        keys: [...new Set(records.map((r) => r.key))],
        digests: [...new Set(records.map((r) => r.digest))],
      };
      // The temp file goes in tmp/, where a process killed mid-write leaves it to removeStaleStaging.
      writeFileAtomic(file, JSON.stringify(pin) + "\n", { durable: false, tempDir: store.dir("tmp") });
      written = true;
    },
    release() {
      if (!written) return;
      written = false;
      try {
        unlinkSync(file);
      } catch {
        // already gone (a prune found this process dead? then it is not us)
      }
    },
  };
}

/** claim, with each pass's outcome pinned before the claim records it and checks for a prune. */
export function pinnedClaim(claim: StoreClaim, pin: LayerPin): StoreClaim {
  return {
    get optimistic() {
      return claim.optimistic;
    },
    hold: () => claim.hold(),
    release: () => claim.release(),
    run: (system, pass) =>
      claim.run(system, async (guard) => {
        const outcome = await pass(guard);
        pin.hold(outcome.used);
        return outcome;
      }),
  };
}

export interface Pinned {
  keys: Set<LayerKey>;
  digests: Set<OutputDigest>;
}

/** What live processes have pinned; the pins of dead ones are removed on the way. */
export function readPins(store: Store): Pinned {
  const pinned: Pinned = { keys: new Set(), digests: new Set() };
  for (const { file, pin } of pinFilesIn(store.dir("pins"))) {
    if (typeof pin.pid !== "number" || !processLives(pin.pid, pin.pidStart ?? 0)) {
      try {
        unlinkSync(file);
      } catch {
        // someone else cleared it
      }
      continue;
    }
    addPin(pinned, pin);
  }
  return pinned;
}

/**
 * Everything the pins in a store's pins/ dir name, without asking whose process lives: for the
 * store of a Castle nested in a running system, whose pids are of another pid namespace. Reads only.
 */
export function readPinsIn(dir: string): Pinned {
  const pinned: Pinned = { keys: new Set(), digests: new Set() };
  for (const { pin } of pinFilesIn(dir)) addPin(pinned, pin);
  return pinned;
}

function pinFilesIn(dir: string): { file: string; pin: PinFile }[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: { file: string; pin: PinFile }[] = [];
  for (const name of names) {
    if (!name.endsWith(".json")) continue;
    try {
      out.push({ file: join(dir, name), pin: JSON.parse(readFileSync(join(dir, name), "utf8")) as PinFile });
    } catch {
      // being replaced this instant (writes are atomic): its next version is read next time
    }
  }
  return out;
}

function addPin(pinned: Pinned, pin: PinFile): void {
  for (const key of pin.keys ?? []) pinned.keys.add(key);
  for (const digest of pin.digests ?? []) pinned.digests.add(digest);
}
