// Owns what "this file is unchanged" means when Castle records what a definition read: a
// path's stat identity (device, inode, mode, size, mtime and ctime, as Node reports them), or
// "absent". A write changes ctime (which no user can set) and a replacement changes the inode,
// so an equal identity means equal content — unless the file changed within the same clock
// tick as the stat, which is why identities too close to the run's start are "racy" and never
// trusted (the same rule the local sources' stat cache follows).

import { lstatSync, statSync, type Stats } from "node:fs";

export type StatIdentity =
  | { kind: "absent" }
  | { kind: "present"; dev: number; ino: number; mode: number; size: number; mtimeMs: number; ctimeMs: number };

/** A file (or directory) something read, and what it was when read. */
export interface FileRead {
  path: string;
  /** stat (follows symlinks) or lstat. */
  follow: boolean;
  identity: StatIdentity;
}

/** Files changed this close to a run's start (ms) may change again unseen: never trusted. */
export const RACY_MS = 2000;

/** The identity of path now (stat follows symlinks, lstat does not); any error is "absent". */
export function statIdentity(path: string, follow: boolean): StatIdentity {
  let st: Stats | undefined;
  try {
    st = follow ? statSync(path) : lstatSync(path);
  } catch {
    return { kind: "absent" };
  }
  return identityOfStats(st);
}

export function identityOfStats(st: Stats): StatIdentity {
  return { kind: "present", dev: st.dev, ino: st.ino, mode: st.mode, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
}

/** True when the identity was taken so soon after a change that a second change could hide. */
export function isRacy(identity: StatIdentity, sinceMs: number): boolean {
  return identity.kind === "present" && (identity.mtimeMs >= sinceMs - RACY_MS || identity.ctimeMs >= sinceMs - RACY_MS);
}
