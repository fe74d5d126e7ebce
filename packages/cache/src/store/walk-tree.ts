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

/** Every entry under root except root itself, in a stable order. Sockets are skipped. */
export function walkTree(root: string): TreeEntry[] {
  const entries: TreeEntry[] = [];
  let sawDir = false;
  const visit = (dirAbs: string, dirRel: string) => {
    const names = readdirSync(dirAbs).sort();
    for (const name of names) {
      const abs = join(dirAbs, name);
      const path = dirRel === "" ? name : `${dirRel}/${name}`;
      const st = lstatSync(abs);
      const mode = st.mode & 0o7777;
      if (st.isDirectory()) {
        sawDir = true;
        entries.push({ kind: "dir", path, mode, opaque: false });
        visit(abs, path);
      } else if (st.isFile()) {
        entries.push({ kind: "file", path, mode, size: st.size, absPath: abs });
      } else if (st.isSymbolicLink()) {
        entries.push({ kind: "symlink", path, target: readlinkSync(abs) });
      } else if (st.isCharacterDevice() && st.rdev === 0) {
        entries.push({ kind: "whiteout", path });
      } else if ((st.mode & S_IFMT) === S_IFCHR || (st.mode & S_IFMT) === S_IFBLK) {
        const type = (st.mode & S_IFMT) === S_IFCHR ? "char" : "block";
        entries.push({ kind: "device", path, mode, type, major: major(st.rdev), minor: minor(st.rdev) });
      } else if (st.isFIFO()) {
        entries.push({ kind: "fifo", path, mode });
      }
    }
  };
  visit(root, "");
  if (sawDir) markOpaque(root, entries);
  return entries;
}

function markOpaque(root: string, entries: TreeEntry[]): void {
  const opaque = listOpaqueDirs(root);
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
