// Owns snapshotting a local directory into a staging tree: directories, files (modes kept,
// reflinked where the filesystem can) and symlinks verbatim, from the entry list the digest walk
// produced, so ignores apply identically. The caller commits with expectDigest: a file that
// changed during the copy makes the digests differ, and nothing half-copied is ever stored.
//
// Modes are kept whole, setuid, setgid and sticky bits included, alike for root and everyone
// else: the kernel clears a file's setuid bit when someone without CAP_FSETID writes to it, so
// a file whose mode has such bits gets its mode again (as the digest walk saw it) after its data.
// Directories get theirs last, deepest first. (They mean nothing inside the sandbox, which runs
// everything with no_new_privs.) Given the tree last realized from the same directory (a source
// being edited, such as an override), a file found there unchanged — same size, mode and sha256 —
// is hard-linked from it instead of copied: stored trees never change, and a link costs a
// fraction of a copy. Copies are synchronous calls (fast), but the event loop gets a turn every
// YIELD_EVERY_MS, so a large directory never freezes the progress view.

import { chmodSync, constants, copyFileSync, linkSync, lstatSync, mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { hashFile } from "@castle/cache/store";
import type { LocalEntry } from "./local-digest";

/** setuid, setgid, sticky: the bits a write by an unprivileged process may clear. */
const SPECIAL_BITS = 0o7000;

export interface CopyProgress {
  (bytesDone: number, bytesTotal: number): void;
}

const YIELD_EVERY_MS = 50;

/** Copies entries (relative to src, parents before children) into dest, an empty directory. */
export async function copyLocalEntries(
  src: string, entries: readonly LocalEntry[], dest: string, onProgress?: CopyProgress, reuseTree?: string,
): Promise<{ linked: number }> {
  let linked = 0;
  const total = entries.reduce((n, e) => n + (e.kind === "file" ? e.size : 0), 0);
  let done = 0;
  let lastReport = 0;
  let lastYield = Date.now();
  const dirs: Array<{ path: string; mode: number }> = [];
  onProgress?.(0, total);
  for (const entry of entries) {
    if (Date.now() - lastYield >= YIELD_EVERY_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      lastYield = Date.now();
    }
    const from = `${src}/${entry.path}`;
    const to = `${dest}/${entry.path}`;
    switch (entry.kind) {
      case "dir":
        mkdirSync(to, { mode: 0o700 });
        dirs.push({ path: to, mode: entry.mode });
        break;
      case "file":
        if (reuseTree && linkUnchanged(join(reuseTree, entry.path), entry, to)) linked++;
        else {
          // copyFile copies the mode too, before the data; the digest check catches content changed meanwhile.
          copyFileSync(from, to, constants.COPYFILE_FICLONE);
          if (entry.mode & SPECIAL_BITS) chmodSync(to, entry.mode);
        }
        done += entry.size;
        if (onProgress && Date.now() - lastReport >= 100) {
          lastReport = Date.now();
          onProgress(done, total);
        }
        break;
      case "symlink":
        symlinkSync(entry.target, to);
        break;
      default:
        break;
    }
  }
  // Directory modes last, deepest first, so a read-only directory can still be filled.
  for (let i = dirs.length - 1; i >= 0; i--) chmodSync(dirs[i]!.path, dirs[i]!.mode);
  onProgress?.(done, total);
  return { linked };
}

/** Links `old` at `to` when it holds what the entry says the source file holds. */
function linkUnchanged(old: string, entry: Extract<LocalEntry, { kind: "file" }>, to: string): boolean {
  try {
    const st = lstatSync(old, { throwIfNoEntry: false });
    if (!st?.isFile() || st.size !== entry.size || (st.mode & 0o7777) !== entry.mode) return false;
    if (hashFile(old, entry.mode) !== entry.sha256) return false;
    linkSync(old, to);
    return true;
  } catch {
    return false; // another filesystem, a link limit...: copy instead
  }
}
