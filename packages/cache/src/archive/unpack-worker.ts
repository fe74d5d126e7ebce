// Owns the worker thread of an unpack whose decompressor writes to a fifo (zstd started by
// castle-treeutil's helper). The whole unpack after decompression runs on that worker: it reads
// the fifo with blocking reads, parses the tar, checks every entry and writes it, hashing file
// contents and records into the tree's output digest (unpack-thread.ts). The main thread only
// downloads, hashes and feeds the compressed bytes, so the CPU-heavy part of concurrent pulls
// runs on one thread each, beside the network, zstd and each other, with no message per chunk
// and no main-thread hop in the middle. The worker asks the main thread to apply overlay marks
// (whiteouts), since castle-treeutil's helper lives here. What both sides agree on is
// unpack-protocol.ts.

import { MessageChannel, type MessagePort } from "node:worker_threads";
import { type OverlayMark, applyOverlayMarksAsync } from "../store/treeutil";
import { ioError } from "./tree-executor";
import type { UnpackOptions } from "./unpack";
import { STOP, type FromWorker, type UnpackJob, deserializeFailure, serializeFailure } from "./unpack-protocol";
import { acquireWorker, releaseWorker } from "./worker-pool";

/** What the worker's unpack produced. */
export interface WorkerUnpack {
  entries: number;
  bytes: number;
  /** The output digest, or undefined when only digesting the tree on disk can tell. */
  digest: string | undefined;
  digestCounts: { entries: number; bytes: number };
}

export interface UnpackWorkerRun {
  /** Resolves when the worker wrote the whole archive; rejects with its first failure. */
  readonly done: Promise<WorkerUnpack>;
  /** Asks the worker to stop before its next read (after a failure elsewhere; kill the fifo's
   * writer too, since a read in progress cannot be interrupted). */
  stop(): void;
  /** Settles once the worker no longer reads fd or writes under root. */
  readonly over: Promise<void>;
}

/** Unpacks the tar read from fd (a blocking fifo read end, which the caller closes once `over`
 * settled) into root, an empty directory, on a pooled worker thread. */
export function unpackOnWorker(fd: number, root: string, options: UnpackOptions): UnpackWorkerRun {
  const pooled = acquireWorker("unpack-thread");
  const stopWords = new Int32Array(new SharedArrayBuffer(4));
  const channel = new MessageChannel();
  const port: MessagePort = channel.port1;
  port.on("message", (message: FromWorker) => {
    if (message.type === "marks") void applyMarks(port, root, message.marks);
  });
  port.unref();
  const ended = new Promise<FromWorker>((resolve) => {
    pooled.onMessage = (message) => resolve(message as FromWorker);
    pooled.onFailure = (error) => resolve({ type: "failed", failure: serializeFailure(ioError(root, error.message, error)) });
  }).then((message) => {
    port.close();
    releaseWorker("unpack-thread", pooled);
    return message;
  });
  const limits = {
    ...(options.maxEntryBytes !== undefined ? { maxEntryBytes: options.maxEntryBytes } : {}),
    ...(options.maxPaxBytes !== undefined ? { maxPaxBytes: options.maxPaxBytes } : {}),
    ...(options.maxEntries !== undefined ? { maxEntries: options.maxEntries } : {}),
    ...(options.maxTotalBytes !== undefined ? { maxTotalBytes: options.maxTotalBytes } : {}),
  };
  const job: UnpackJob = { fd, root, limits, digest: options.digest === true, stop: stopWords.buffer as SharedArrayBuffer, port: channel.port2 };
  pooled.worker.postMessage(job, [channel.port2]);
  const done = ended.then((message): WorkerUnpack => {
    switch (message.type) {
      case "finished":
        return { entries: message.entries, bytes: message.bytes, digest: message.digest ?? undefined, digestCounts: message.digestCounts };
      case "failed":
        throw deserializeFailure(message.failure);
      default:
        throw new Error("the unpack was stopped");
    }
  });
  done.catch(() => {}); // Observed by the caller.
  return {
    done,
    stop: () => {
      Atomics.store(stopWords, STOP, 1);
    },
    over: ended.then(() => {}),
  };
}

async function applyMarks(port: MessagePort, root: string, marks: OverlayMark[]): Promise<void> {
  try {
    await applyOverlayMarksAsync(root, marks);
    port.postMessage({});
  } catch (error) {
    port.postMessage({ failure: serializeFailure(error) });
  }
}
