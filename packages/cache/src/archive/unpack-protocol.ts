// Owns what the unpack worker's two sides agree on (unpack-worker.ts in the main thread,
// unpack-thread.ts in the worker): the job, the messages they exchange, the stop word, and how a
// failure crosses between threads (a CastleError's code, message, hint and data; anything else
// as its message alone).

import { constants } from "node:fs";
import { CastleError, type CastleErrorCode, isCastleError } from "@castle/errors";
import type { OverlayMark } from "../store/treeutil";
import type { TarLimits } from "./tar-reader";
import type { WriterLimits } from "./tree-writer";

/** Most bytes of decompressed tar one read of the fifo takes (the fifo holds 1 MiB). */
export const READ_BYTES = 1 << 20;
/** Index in the job's stop words: non-zero asks the worker to stop before its next read. */
export const STOP = 0;

/** Files are created exclusively, never through a symlink. */
export const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** The job a worker is given for one unpack. */
export interface UnpackJob {
  /** The fifo's read end (blocking), which the main thread closes once the job is over. */
  fd: number;
  /** The empty directory to unpack into. */
  root: string;
  limits: TarLimits & WriterLimits;
  /** Hash file contents and entry records into the tree's output digest. */
  digest: boolean;
  /** An Int32Array's buffer: word STOP set means stop. */
  stop: SharedArrayBuffer;
  /** For the overlay marks the main thread applies. */
  port: import("node:worker_threads").MessagePort;
}

/** A failure, as it crosses threads. */
export interface SerializedFailure {
  code?: string;
  message: string;
  hint?: string;
  data?: Record<string, unknown>;
}

/** What the worker posts: the job's end (on the worker), or a request for marks (on the job's port). */
export type FromWorker =
  | { type: "finished"; entries: number; bytes: number; digest: string | null; digestCounts: { entries: number; bytes: number } }
  | { type: "failed"; failure: SerializedFailure }
  | { type: "stopped" }
  | { type: "marks"; marks: OverlayMark[] };

/** The main thread's answer to a request for marks. */
export interface ToWorker {
  failure?: SerializedFailure;
}

export function serializeFailure(error: unknown): SerializedFailure {
  if (isCastleError(error)) {
    const castle = error as CastleError;
    let data: Record<string, unknown> | undefined;
    try {
      data = JSON.parse(JSON.stringify(castle.data)) as Record<string, unknown>;
    } catch {
      data = undefined;
    }
    return { code: castle.code, message: castle.message, ...(castle.hint !== undefined ? { hint: castle.hint } : {}), ...(data ? { data } : {}) };
  }
  return { message: String((error as Error | undefined)?.message ?? error) };
}

export function deserializeFailure(failure: SerializedFailure): Error {
  if (failure.code === undefined) return new Error(failure.message);
  return new CastleError(failure.code as CastleErrorCode, failure.message, {
    ...(failure.hint !== undefined ? { hint: failure.hint } : {}), ...(failure.data ? { data: failure.data } : {}),
  });
}
