// Owns the worker thread's side of an unpack (see unpack-worker.ts for the whole design): it reads
// the decompressor's fifo with blocking reads into one buffer, parses the tar (tar-reader.ts),
// checks every entry and writes it (tree-writer.ts with its direct executor: mkdir, create, write
// bodies straight from the buffer, fchmod, close, symlink, content and record hashes), and at the
// end posts the tree's counts and output digest, or the first failure as a CastleError's parts.
// The overlay marks of whiteouts are applied by the main thread (castle-treeutil's helper lives
// there): the worker asks for them and waits. Loaded as a file: unpack-thread.cjs beside the
// bundle, or this file through tsx when Castle runs from source.

import { readSync } from "node:fs";
import { type MessagePort, parentPort } from "node:worker_threads";
import type { OverlayMark } from "../store/treeutil";
import { TarReader } from "./tar-reader";
import { TreeWriter } from "./tree-writer";
import { READ_BYTES, STOP, type FromWorker, type ToWorker, type UnpackJob, deserializeFailure, serializeFailure } from "./unpack-protocol";

parentPort?.on("message", (job: UnpackJob) => {
  void runJob(job).then((message) => {
    job.port.close();
    parentPort?.postMessage(message);
  });
});

async function runJob(job: UnpackJob): Promise<FromWorker> {
  const stop = new Int32Array(job.stop);
  let writer: TreeWriter | undefined;
  try {
    const tree = (writer = new TreeWriter(job.root, job.limits, { digest: job.digest, applyMarks: (_root, marks) => askForMarks(job.port, marks) }));
    const reader = new TarReader((header) => tree.entry(header), job.limits);
    const buffer = Buffer.allocUnsafe(READ_BYTES);
    for (;;) {
      if (Atomics.load(stop, STOP) !== 0) {
        await tree.close(); // Closes a file left open mid-body; the main thread removes the tree.
        return { type: "stopped" };
      }
      // Blocks until zstd writes or exits; every chunk's bodies are written before the next read.
      const n = readSync(job.fd, buffer, 0, READ_BYTES, null);
      if (n === 0) break;
      reader.push(n === READ_BYTES ? buffer : buffer.subarray(0, n));
    }
    reader.end();
    const digest = await tree.finish();
    return { type: "finished", entries: tree.entries, bytes: tree.bytes, digest: digest ?? null, digestCounts: tree.digestCounts };
  } catch (error) {
    await writer?.close().catch(() => {});
    return { type: "failed", failure: serializeFailure(error) };
  }
}

/** Has the main thread apply the overlay marks; resolves once it has (rejects with its error). */
function askForMarks(port: MessagePort, marks: OverlayMark[]): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    port.once("message", (reply: ToWorker) => {
      port.unref();
      if (reply.failure) reject(deserializeFailure(reply.failure));
      else resolve();
    });
    port.ref();
    port.postMessage({ type: "marks", marks } satisfies FromWorker);
  });
}
