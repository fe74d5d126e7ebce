// Owns a system's persistent state: the upper dir that keeps what the user writes (home, /etc
// edits, installed files) across runs and across rebuilds of the layers beneath it, under
// $XDG_DATA_HOME/castle/systems/<name>. `--fresh` starts it clean; `--ephemeral` uses a
// throwaway one that is removed after the run.

import { mkdirSync, readdirSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { ownedName, removeDeadOwners, removeTree } from "@castle/cache/store";

export interface UpperDir {
  /** The system's state dir (holding the rest). */
  dir: string;
  upper: string;
  work: string;
  /** A plain directory (not on an overlay) for the Castle inside: its store, instances, systems. */
  nestedStore: string;
  /** Removes an ephemeral upper; keeps a persistent one. */
  release(): void;
}

export function systemUpper(dataDir: string, system: string, mode: { fresh: boolean; ephemeral: boolean }): UpperDir {
  if (mode.ephemeral) {
    const tmp = join(dataDir, "tmp");
    mkdirSync(tmp, { recursive: true });
    removeDeadOwners(tmp);
    // Named after this process, so a run killed before its release is cleared by a later one.
    const dir = join(tmp, ownedName(system));
    mkdirSync(join(dir, "upper"), { recursive: true });
    mkdirSync(join(dir, "work"));
    mkdirSync(join(dir, "castle-store"));
    return { dir, upper: join(dir, "upper"), work: join(dir, "work"), nestedStore: join(dir, "castle-store"), release: () => removeTree(dir) };
  }
  const dir = join(dataDir, "systems", system);
  if (mode.fresh) removeTree(dir);
  mkdirSync(join(dir, "upper"), { recursive: true });
  emptyWorkDir(join(dir, "work"));
  mkdirSync(join(dir, "castle-store"), { recursive: true });
  return { dir, upper: join(dir, "upper"), work: join(dir, "work"), nestedStore: join(dir, "castle-store"), release: () => {} };
}

/**
 * overlayfs needs an empty work dir. Each run leaves the kernel's empty work/work behind, removed
 * here with one rmdir; anything else (leftovers from a killed run) is cleared as a whole tree.
 */
function emptyWorkDir(work: string): void {
  try {
    for (const name of readdirSync(work)) rmdirSync(join(work, name));
    return;
  } catch {
    // missing, or not just empty directories: start it again
  }
  removeTree(work);
  mkdirSync(work);
}
