// Owns the definition a system carries inside (~/castle-src): the directory `castle run` was given,
// as it is, or for a git repository a work tree of the exact commit that was run, kept with the
// system's state (<system dir>/castle-src) so that edits made inside persist like any file there.
// When a later run uses another commit, an untouched work tree moves to it; one with edits is
// left as it is (nothing is lost), and the run says so.

import { cpSync, existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, renameSync } from "node:fs";
import { join } from "node:path";
import { removeTree, writeFileAtomic } from "@castle/cache/store";
import type { DefinitionLocation } from "../context/locate-definition";

export interface DefinitionTree {
  /** The host directory mounted writable at ~/castle-src. */
  host: string;
  /** Where castle.ts is below it, if not at its top. */
  subdir?: string;
}

interface TreeState {
  commit: string;
  url?: string;
}

/** The tree to mount for this run; `checkout(commit)` is where the store keeps a commit's files. */
export function definitionTree(
  location: DefinitionLocation,
  systemDir: string,
  checkout: (commit: string) => string,
  warn: (line: string) => void,
): DefinitionTree {
  const subdir = location.subdir ? { subdir: location.subdir } : {};
  if (location.commit === undefined) return { host: location.root, ...subdir };
  const tree = join(systemDir, "castle-src");
  const stateFile = join(systemDir, "castle-src.json");
  const state = readState(stateFile);
  if (existsSync(tree) && state?.commit === location.commit) return { host: tree, ...subdir };
  if (existsSync(tree)) {
    const before = state ? checkout(state.commit) : undefined;
    if (!before || !existsSync(before) || !sameTree(before, tree)) {
      warn(
        `~/castle-src holds your edits of commit ${state?.commit.slice(0, 12) ?? "(unknown)"}; this run is commit ` +
          `${location.commit.slice(0, 12)}: the work tree is left as it is (move it away inside to get the new one)`,
      );
      return { host: tree, ...subdir };
    }
  }
  const temp = `${tree}.${process.pid}.tmp`;
  removeTree(temp);
  cpSync(location.root, temp, { recursive: true, verbatimSymlinks: true, filter: (from) => !from.endsWith("/.castle-complete") });
  removeTree(tree);
  renameSync(temp, tree);
  writeFileAtomic(stateFile, JSON.stringify({ commit: location.commit, url: location.label } satisfies TreeState) + "\n");
  return { host: tree, ...subdir };
}

function readState(file: string): TreeState | undefined {
  try {
    const state = JSON.parse(readFileSync(file, "utf8")) as TreeState;
    return typeof state.commit === "string" ? state : undefined;
  } catch {
    return undefined;
  }
}

/** True when the work tree holds exactly the checkout's files (the marker file aside). */
function sameTree(checkoutDir: string, tree: string): boolean {
  const names = (dir: string) => readdirSync(dir).filter((n) => n !== ".castle-complete").sort();
  const walk = (a: string, b: string): boolean => {
    const left = names(a);
    const right = readdirSync(b).sort();
    if (left.length !== right.length || left.some((n, i) => n !== right[i])) return false;
    for (const name of left) {
      const x = lstatSync(join(a, name));
      const y = lstatSync(join(b, name));
      if (x.isDirectory() !== y.isDirectory() || x.isSymbolicLink() !== y.isSymbolicLink()) return false;
      if (x.isFile() && x.size !== y.size) return false;
      if (x.isDirectory() && !walk(join(a, name), join(b, name))) return false;
      if (x.isSymbolicLink() && readlinkSync(join(a, name)) !== readlinkSync(join(b, name))) return false;
      if (x.isFile() && !readFileSync(join(a, name)).equals(readFileSync(join(b, name)))) return false;
    }
    return true;
  };
  try {
    return walk(checkoutDir, tree);
  } catch {
    return false;
  }
}
