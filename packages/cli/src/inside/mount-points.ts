// Owns the bottom layer Castle puts beneath a running system: the empty directories and files its
// mounts land on (so that making a mount point never writes into the system's persistent upper
// dir), and the link that puts `castle` on every shell's PATH. It is a directory of its own under
// the data dir, named by the hash of what it holds, made once (aside, then renamed) and shared by
// every run that needs the same entries; a system's own files always win over it.

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { removeTree } from "@castle/cache/store";

export type MountPointEntry =
  | { kind: "dir"; path: string }
  | { kind: "file"; path: string }
  | { kind: "symlink"; path: string; target: string };

/** The directory holding these entries (absolute paths inside the system), made if missing. */
export function mountPointLayer(dataDir: string, entries: MountPointEntry[]): string {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const id = createHash("sha256").update(JSON.stringify(sorted)).digest("hex").slice(0, 24);
  const dir = join(dataDir, "mount-points", id);
  if (existsSync(dir)) return dir;
  const temp = `${dir}.${process.pid}.tmp`;
  removeTree(temp);
  mkdirSync(temp, { recursive: true });
  for (const entry of sorted) {
    const at = join(temp, entry.path);
    mkdirSync(entry.kind === "dir" ? at : dirname(at), { recursive: true });
    if (entry.kind === "file") writeFileSync(at, "");
    if (entry.kind === "symlink") symlinkSync(entry.target, at);
  }
  try {
    renameSync(temp, dir);
  } catch (error) {
    removeTree(temp);
    // Another run made the same layer meanwhile: that one is as good.
    if (!existsSync(dir)) throw error;
  }
  return dir;
}
