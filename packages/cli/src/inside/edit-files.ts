// Owns putting a source's files where they are edited: a copy of its verified tree from the store,
// written aside and renamed into place, so an interrupted copy never looks like an edit. The copy
// is writable by its owner whatever the store's modes (store trees may be read-only).

import { chmodSync, cpSync, lstatSync, mkdirSync, readdirSync, renameSync, rmdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { removeTree } from "@castle/cache/store";

/** Copies tree to dest, which must not exist or be an empty directory. */
export async function placeSourceFiles(tree: string, dest: string): Promise<void> {
  mkdirSync(dirname(dest), { recursive: true });
  const temp = `${dest}.${process.pid}.tmp`;
  removeTree(temp);
  try {
    cpSync(tree, temp, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    makeWritable(temp);
    if (isEmptyDir(dest)) rmdirSync(dest);
    renameSync(temp, dest);
  } finally {
    removeTree(temp);
  }
}

export function isEmptyDir(path: string): boolean {
  try {
    return readdirSync(path).length === 0;
  } catch {
    return false;
  }
}

function makeWritable(path: string): void {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return;
  if ((st.mode & 0o200) === 0) chmodSync(path, (st.mode & 0o7777) | 0o200);
  if (st.isDirectory()) for (const name of readdirSync(path)) makeWritable(join(path, name));
}
