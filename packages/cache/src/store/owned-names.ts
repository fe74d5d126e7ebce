// Owns naming what a process leaves in a shared directory after itself (`<label>-<pid>-<8 hex>`,
// and `.tmp` files of atomic writes), and clearing what processes that are gone left there: a
// castle killed with SIGKILL cannot clean up, so the next one does.

import { readdirSync } from "node:fs";
import { join } from "node:path";
import { processAlive } from "@castle/sandbox";
import { removeTree } from "./remove-tree";

const OWNED = /-(\d+)-[0-9a-f]{8}(\.tmp)?$/;

/** `<label>-<pid>-<8 hex>`: unique in this process, and naming it as the owner. */
export function ownedName(label: string): string {
  return `${label.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 40)}-${process.pid}-${uniqueHex()}`;
}

/** The pid in a name made by ownedName (or an atomic write's temp file), if it is one. */
export function ownerOf(name: string): number | undefined {
  const match = OWNED.exec(name);
  return match ? Number(match[1]) : undefined;
}


/** Whether name was made by ownedName for a process that still lives (else false). */
export function ownerLives(name: string): boolean {
  const owner = ownerOf(name);
  return owner !== undefined && processAlive(owner);
}

/** Removes the entries of dir whose owner is gone; returns how many. */
export function removeDeadOwners(dir: string): number {
  let removed = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    const owner = ownerOf(name);
    if (owner === undefined || processAlive(owner)) continue;
    removeTree(join(dir, name));
    removed++;
  }
  return removed;
}

/**
 * Eight hex digits for a name that already holds the pid: unique within this process is enough,
 * so no crypto random (its first use costs a cached `castle run` half a millisecond).
 */
export function uniqueHex(): string {
  return Math.floor(Math.random() * 0x1_0000_0000).toString(16).padStart(8, "0");
}
