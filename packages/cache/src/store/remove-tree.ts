// Owns deleting trees that builds leave behind, including the parts an unprivileged owner cannot
// delete as they are: read-only directories and overlayfs work dirs with mode 000.

import { chmodSync, lstatSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";

/** Removes path and everything under it; a missing path is not an error. */
export function removeTree(path: string): void {
  try {
    rmSync(path, { recursive: true, force: true, maxRetries: 2 });
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EACCES" && (error as NodeJS.ErrnoException).code !== "EPERM") throw error;
  }
  makeDirsWritable(path);
  rmSync(path, { recursive: true, force: true, maxRetries: 2 });
}

function makeDirsWritable(path: string): void {
  let stat;
  try {
    stat = lstatSync(path);
  } catch {
    return;
  }
  if (!stat.isDirectory()) return;
  chmodSync(path, 0o700);
  for (const name of readdirSync(path)) makeDirsWritable(join(path, name));
}
