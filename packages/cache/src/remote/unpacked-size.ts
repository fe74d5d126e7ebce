// Owns what a manifest states about its blob's contents — bytes of file contents and archive
// entries, counted the way the unpacker counts them (archive/tree-writer.ts: every tar entry,
// including each opaque directory's marker; the sizes of regular files) — and the free space a
// pull checks that statement against before it writes anything.

import { statfsSync } from "node:fs";
import type { UnpackedSize } from "../types";
import { listOpaqueDirsAsync } from "../store/treeutil";
import { walkEntries } from "../store/walk-tree";

/** What packing the tree at root gives the unpacker to write. */
export async function unpackedSizeOf(root: string): Promise<UnpackedSize> {
  const opaque = listOpaqueDirsAsync(root);
  opaque.catch(() => {}); // Awaited below.
  let bytes = 0;
  let entries = 0;
  for (const entry of walkEntries(root)) {
    entries++;
    if (entry.kind === "file") bytes += entry.size;
  }
  return { bytes, entries: entries + (await opaque).size };
}

/** Bytes an unprivileged writer may still use on the filesystem holding dir. */
export function freeSpace(dir: string): number {
  const stats = statfsSync(dir);
  return Number(stats.bavail) * Number(stats.bsize);
}
