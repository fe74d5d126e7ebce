// Owns a system's persistent state: the upper dir that keeps what the user writes (home, /etc
// edits, installed files) across runs and across rebuilds of the layers beneath it, under
// $XDG_DATA_HOME/castle/systems/<name>. `--fresh` starts it clean; `--ephemeral` uses a
// throwaway one, empty, that is removed after the run; `--snapshot` a throwaway one on top of
// the persistent state (which it reads, never writes). Each system's castle-store/ holds the
// dirs of the Castle inside it, whose stores the outer prune must count (nestedStores).

import { existsSync, lstatSync, mkdirSync, readdirSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { ownedName, ownerLives, removeDeadOwners, removeTree, type NestedStore } from "@castle/cache/store";

/** A system's dir for the Castle inside it (a plain directory, not on the system's overlay). */
const NESTED_CASTLE = "castle-store";
/** The dirs of the Castle inside a system, in its castle-store/: its store, instances, data. */
export const NESTED_DIRS = { cache: "cache", state: "state", data: "data" } as const;
/** How deep nestedStores looks: deeper nests than this are not expected of anyone. */
const MAX_NEST_DEPTH = 16;

export interface UpperDir {
  /** The system's state dir (holding the rest). */
  dir: string;
  /** Trees to put on top of the system's layers, bottom first (the persistent state, for a snapshot). */
  above: string[];
  upper: string;
  work: string;
  /** A plain directory (not on an overlay) for the Castle inside: its store, instances, systems. */
  nestedStore: string;
  /** Removes an ephemeral upper; keeps a persistent one. */
  release(): void;
}

export function systemUpper(dataDir: string, system: string, mode: { fresh: boolean; ephemeral: boolean; snapshot?: boolean }): UpperDir {
  if (mode.ephemeral || mode.snapshot) {
    const tmp = join(dataDir, "tmp");
    mkdirSync(tmp, { recursive: true });
    removeDeadOwners(tmp);
    // Named after this process, so a run killed before its release is cleared by a later one.
    const dir = join(tmp, ownedName(system));
    mkdirSync(join(dir, "upper"), { recursive: true });
    mkdirSync(join(dir, "work"));
    mkdirSync(join(dir, NESTED_CASTLE));
    const persistent = join(persistentDir(dataDir, system), "upper");
    const above = mode.snapshot && hasEntries(persistent) ? [persistent] : [];
    return { dir, above, upper: join(dir, "upper"), work: join(dir, "work"), nestedStore: join(dir, NESTED_CASTLE), release: () => removeTree(dir) };
  }
  const dir = persistentDir(dataDir, system);
  if (mode.fresh) removeTree(dir);
  mkdirSync(join(dir, "upper"), { recursive: true });
  emptyWorkDir(join(dir, "work"));
  mkdirSync(join(dir, NESTED_CASTLE), { recursive: true });
  return { dir, above: [], upper: join(dir, "upper"), work: join(dir, "work"), nestedStore: join(dir, NESTED_CASTLE), release: () => {} };
}

/**
 * The stores of the Castles inside this Castle's systems (each reads this Castle's store as a
 * lower tier), deeper nests included, and whether the system holding each may be running: a
 * persistent one when `running` names it, an ephemeral one while the process that made it
 * lives; whatever is nested in a running system counts as running (its pids are another
 * namespace's, and none lives once its outer system stops).
 */
export function nestedStores(dataDir: string, running: ReadonlySet<string>): NestedStore[] {
  const found: NestedStore[] = [];
  const visit = (data: string, depth: number, isRunning: (name: string, ephemeral: boolean) => boolean): void => {
    if (depth >= MAX_NEST_DEPTH) return;
    for (const [parent, ephemeral] of [[join(data, "systems"), false], [join(data, "tmp"), true]] as const) {
      for (const name of readdirQuiet(parent)) {
        const nested = join(parent, name, NESTED_CASTLE);
        if (!existsSync(join(nested, NESTED_DIRS.cache))) continue;
        const live = isRunning(name, ephemeral);
        found.push({ root: join(nested, NESTED_DIRS.cache), running: live });
        visit(join(nested, NESTED_DIRS.data), depth + 1, () => live);
      }
    }
  };
  visit(dataDir, 0, (name, ephemeral) => (ephemeral ? ownerLives(name) : running.has(name)));
  return found;
}

function persistentDir(dataDir: string, system: string): string {
  return join(dataDir, "systems", system);
}

/** What earlier runs of a system wrote: where, and how many files (links, whiteouts) and bytes. */
export interface StoredState {
  dir: string;
  files: number;
  bytes: number;
}

/** The system's persistent state, or undefined when no run wrote anything. */
export function storedState(dataDir: string, system: string): StoredState | undefined {
  const dir = join(persistentDir(dataDir, system), "upper");
  let files = 0;
  let bytes = 0;
  const visit = (path: string): void => {
    for (const name of readdirQuiet(path)) {
      const entry = join(path, name);
      const st = lstatSync(entry);
      if (st.isDirectory()) visit(entry);
      else {
        files++;
        bytes += st.isFile() ? st.size : 0;
      }
    }
  };
  visit(dir);
  return files > 0 ? { dir, files, bytes } : undefined;
}

function hasEntries(dir: string): boolean {
  return readdirQuiet(dir).length > 0;
}

function readdirQuiet(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
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
