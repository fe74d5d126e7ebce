// Owns saying clearly that the store's disk is full: a build whose script ran out of space (its
// files are written under the store, as the build's upper dir) or a store write that did. The
// failed build has already left nothing behind; the message says where space is needed.

import { statfsSync } from "node:fs";
import { CastleError, isCastleError } from "@castle/errors";

const NO_SPACE = /No space left on device|ENOSPC/;

/** The error with a hint about the store's disk when it ran out of space; else the error itself. */
export function explainDiskFull(error: unknown, storeRoot: string): unknown {
  const hint = `the store's disk is full (${storeRoot}, ${freeSpace(storeRoot)} free now): free some space, e.g. \`castle cache prune\`, and run again`;
  if (isCastleError(error)) {
    const { logTail, logPath, exitCode } = error as CastleError & { logTail?: unknown; logPath?: unknown; exitCode?: unknown };
    const inLog = Array.isArray(logTail) && logTail.some((line) => NO_SPACE.test(String(line)));
    // A build that filled its own /tmp hit its limit, which its message names: not the store's disk.
    if (error.code !== "CASTLE_BUILD_FAILED" || !inLog || error.data.limit !== undefined) return error;
    const explained = new CastleError(error.code, `${error.message} (it ran out of disk space)`, {
      cause: error, data: error.data, hint, ...(error.layer ? { layer: error.layer } : {}),
    });
    // The build's log stays on the error, as BuildFailedError carries it.
    return Object.assign(explained, { logTail, logPath, exitCode });
  }
  if ((error as NodeJS.ErrnoException | undefined)?.code !== "ENOSPC") return error;
  return new CastleError("CASTLE_CACHE_IO", `cannot write to the store: ${(error as Error).message}`, { cause: error, data: { root: storeRoot }, hint });
}

function freeSpace(path: string): string {
  try {
    const fs = statfsSync(path);
    return `${((fs.bavail * fs.bsize) / 1e6).toFixed(1)} MB`;
  } catch {
    return "unknown";
  }
}
