// Owns what the unpack worker's two sides agree on (unpack-worker.ts in the main thread,
// unpack-thread.ts in the worker): the shared buffer's layout, the operation codes and how many
// words each takes, the flags a file is created with, and the messages they exchange.

import { constants } from "node:fs";

/** Bytes per slot of decompressed tar the worker reads into. */
export const SLOT = 1 << 20;
export const SLOTS = 4;
/** Bytes of control words before the slots: [slots released, stop reading, wake-ups posted]. */
export const CONTROL = 16;

/** Files are created exclusively, never through a symlink. */
export const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Filesystem operations the main thread posts, flattened into one array: a code, then its words. */
export const Op = {
  Mkdir: 1,
  Open: 2,
  Write: 3,
  Close: 4,
  Symlink: 5,
  Record: 6,
  Release: 7,
} as const;

/** Words each operation takes in the array, its code included (indexed by code). */
export const OP_SIZE = [0, 2, 3, 4, 4, 3, 2, 1] as const;

/** The job a worker is given for one unpack. */
export interface UnpackJob {
  fd: number;
  sab: SharedArrayBuffer;
  port: import("node:worker_threads").MessagePort;
  slot: number;
  slots: number;
  control: number;
  /** Hash file contents and entry records into the tree's output digest. */
  digest: boolean;
}

/** What the main thread posts on the job's port. */
export type ToWorker = { type: "ops"; ops: unknown[] } | { type: "finish" } | { type: "abort" };

/** What the worker posts back. */
export interface FromWorker {
  type: "slot" | "end" | "failed" | "finished";
  slot?: number;
  n?: number;
  error?: string;
  failed?: { path: string; message: string } | null;
  digest?: string | null;
}
