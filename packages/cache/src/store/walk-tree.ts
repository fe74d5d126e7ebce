// Owns walking a layer tree into a deterministic list of entries: names sorted at every level,
// parents before children, overlayfs whiteouts and opaque directories recognised. The digest and
// the archive packer both consume this one walk, so they can never disagree about a tree.

import { lstatSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import type { TreeEntry } from "../types";
import { listOpaqueDirs } from "./treeutil";

const S_IFMT = 0o170000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

export interface WalkOptions {
  /** The opaque directories (relative paths) when already known: skips castle-treeutil's scan. */
  opaqueDirs?: ReadonlySet<string>;
}

/** Every entry under root except root itself, in a stable order. Sockets are skipped. */
export function walkTree(root: string, options: WalkOptions = {}): TreeEntry[] {
  const entries = [...walkEntries(root)];
  if (entries.some((e) => e.kind === "dir")) markOpaque(entries, options.opaqueDirs ?? listOpaqueDirs(root));
  return entries;
}

/**
 * walkTree's entries one by one as the walk finds them, every directory with opaque false (the
 * caller learns which are opaque from listOpaqueDirs): lets a consumer start before the walk ends.
 */
export function* walkEntries(root: string): Generator<TreeEntry> {
  yield* visit(root, "");
}

function* visit(dirAbs: string, dirRel: string): Generator<TreeEntry> {
  const names = readdirSync(dirAbs).sort();
  for (const name of names) {
    const abs = join(dirAbs, name);
    const path = dirRel === "" ? name : `${dirRel}/${name}`;
    const st = lstatSync(abs);
    const mode = st.mode & 0o7777;
    if (st.isDirectory()) {
      yield { kind: "dir", path, mode, opaque: false };
      yield* visit(abs, path);
    } else if (st.isFile()) {
      yield { kind: "file", path, mode, size: st.size, absPath: abs };
    } else if (st.isSymbolicLink()) {
      yield { kind: "symlink", path, target: readlinkSync(abs) };
    } else if (st.isCharacterDevice() && st.rdev === 0) {
      yield { kind: "whiteout", path };
    } else if ((st.mode & S_IFMT) === S_IFCHR || (st.mode & S_IFMT) === S_IFBLK) {
      const type = (st.mode & S_IFMT) === S_IFCHR ? "char" : "block";
      yield { kind: "device", path, mode, type, major: major(st.rdev), minor: minor(st.rdev) };
    } else if (st.isFIFO()) {
      yield { kind: "fifo", path, mode };
    }
  }
}

/** Sets the opaque flag of the directories in opaque (a walk made with an empty set, then fixed). */
export function markOpaque(entries: TreeEntry[], opaque: ReadonlySet<string>): void {
  if (opaque.size === 0) return;
  for (const entry of entries) {
    if (entry.kind === "dir" && opaque.has(entry.path)) entry.opaque = true;
  }
}

/** Linux's encoding of device numbers (see sys/sysmacros.h). */
export function major(rdev: number): number {
  return ((rdev >>> 8) & 0xfff) | Math.floor(rdev / 2 ** 32) & ~0xfff;
}

export function minor(rdev: number): number {
  return (rdev & 0xff) | ((rdev >>> 12) & ~0xff);
}
