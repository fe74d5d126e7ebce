// Owns the entries of trees/: how a tree is judged present, placed, sealed and removed.
//
// - Present means a real directory: one lstat, never following a symlink, so a tree directory
//   replaced by a link to some other directory is treated as missing and made again.
// - A placed tree is sealed: its own directory loses its write bits (0555), so nothing can be
//   added to or removed from its top by accident. Only the top: the modes of the entries inside
//   are the layer's content (they are in its digest, and overlayfs shows them to the system as
//   they are on disk), so they are kept exactly as built.
// - A tree is removed by first renaming it out of trees/ into tmp/ under a name that carries this
//   process's pid, then deleting it there: a removal killed midway never leaves a half-removed
//   tree where a build or `cache verify` would find it, and the next castle process clears what
//   is left (LocalStore.removeStaleStaging).

import { chmodSync, lstatSync, renameSync } from "node:fs";
import { join } from "node:path";
import { ownedName } from "./owned-names";
import { removeTree } from "./remove-tree";

/** Mode of a sealed tree's own directory. */
export const SEALED_TREE_MODE = 0o555;

/** True when path is a real directory (not a symlink to one, not a file). */
export function isTreeDir(path: string): boolean {
  try {
    return lstatSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
  } catch {
    return false; // unreachable (EACCES, ENOTDIR…): not usable either
  }
}

/** Makes a placed tree's own directory read-only. A failure (a filesystem without modes) is harmless. */
export function sealTree(path: string): void {
  try {
    chmodSync(path, SEALED_TREE_MODE);
  } catch {
    // Sealing protects against accidents only; the tree is complete without it.
  }
}

/**
 * Moves whatever is at path (a tree, a symlink, a file) out of the way into tmpDir, then deletes
 * it there. Returns false when there was nothing (or, with keepDirs, only a real directory). The
 * name in tmp/ ends in -<pid>-<8 hex>, so a later process removes it if this one dies meanwhile.
 */
export function removeTreeEntry(path: string, tmpDir: string, label: string, options: { keepDirs?: boolean } = {}): boolean {
  const aside = join(tmpDir, ownedName(label));
  const isDir = isTreeDir(path);
  if (isDir && options.keepDirs) return false;
  // A directory moved to another parent must be writable itself (its ".." entry changes).
  if (isDir) {
    try {
      chmodSync(path, 0o700);
    } catch {
      // Not ours to change: the rename below says whether it can go.
    }
  }
  try {
    renameSync(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
  removeTree(aside);
  return true;
}
