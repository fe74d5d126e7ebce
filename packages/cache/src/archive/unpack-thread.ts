// Owns the worker thread's side of an unpack (see unpack-worker.ts for the whole design): it reads
// the decompressor's fifo with blocking 1 MiB reads into the shared slots, posts one message per
// filled slot, and carries out the filesystem operations the main thread posts back (mkdir,
// create, write bodies straight from a slot, fchmod, close, symlink, content and record hashes).
// It alternates: run every batch of operations posted so far; read a free slot (a read blocks
// only until zstd writes, and zstd never waits for this worker's operations); else sleep on a
// counter the main thread bumps after each post. Loaded as a file: unpack-thread.cjs beside the
// bundle, or this file through tsx when Castle runs from source.

import { createHash, type Hash } from "node:crypto";
import { closeSync, fchmodSync, mkdirSync, openSync, readSync, symlinkSync, writeSync } from "node:fs";
import { parentPort, receiveMessageOnPort } from "node:worker_threads";
import { CREATE_FLAGS, OP_SIZE, Op, type FromWorker, type ToWorker, type UnpackJob } from "./unpack-protocol";

interface ThreadState {
  fd: number;
  path: string;
  content: Hash | null;
  tree: Hash | null;
  digest: boolean;
  failed: { path: string; message: string } | null;
}

const post = (message: FromWorker) => parentPort?.postMessage(message);

parentPort?.on("message", (job: UnpackJob) => {
  const ctl = new Int32Array(job.sab, 0, 3);
  const views: Uint8Array[] = [];
  for (let i = 0; i < job.slots; i++) views.push(new Uint8Array(job.sab, job.control + i * job.slot, job.slot));
  const st: ThreadState = { fd: -1, path: "", content: null, tree: null, digest: job.digest, failed: null };
  let filled = 0;
  let eof = false;
  for (;;) {
    // Read the wake-up count first: anything posted after this makes the wait below return.
    const posted = Atomics.load(ctl, 2);
    const received = receiveMessageOnPort(job.port);
    if (received) {
      const message = received.message as ToWorker;
      if (message.type === "ops") {
        run(st, ctl, views, message.ops);
        continue;
      }
      if (st.fd >= 0) {
        try {
          closeSync(st.fd);
        } catch {
          // Already failed; the tree is being removed.
        }
        st.fd = -1;
      }
      const digest = message.type === "finish" && !st.failed && st.tree ? st.tree.digest("hex") : null;
      job.port.close();
      post({ type: "finished", failed: st.failed, digest });
      return;
    }
    if (!eof && Atomics.load(ctl, 1) !== 0) {
      eof = true;
      post({ type: "end" });
      continue;
    }
    if (!eof && filled - Atomics.load(ctl, 0) < job.slots) {
      const index = filled % job.slots;
      const view = views[index] as Uint8Array;
      let n = 0;
      try {
        while (n < job.slot) {
          const k = readSync(job.fd, view, n, job.slot - n, null);
          if (k === 0) {
            eof = true;
            break;
          }
          n += k;
        }
      } catch (error) {
        eof = true;
        post({ type: "end", error: messageOf(error) });
        continue;
      }
      if (n > 0) {
        filled++;
        post({ type: "slot", slot: index, n });
      }
      if (eof) post({ type: "end" });
      continue;
    }
    Atomics.wait(ctl, 2, posted);
  }
});

function fail(st: ThreadState, path: string, error: unknown): void {
  if (st.failed) return;
  st.failed = { path, message: messageOf(error) };
  post({ type: "failed", failed: st.failed });
}

function record(st: ThreadState, text: string): void {
  (st.tree ??= createHash("sha256")).update(text);
}

/** Carries out a batch of operations; after a failure, only slots are still given back. */
function run(st: ThreadState, ctl: Int32Array, views: Uint8Array[], ops: unknown[]): void {
  for (let i = 0; i < ops.length; i += OP_SIZE[ops[i] as number] as number) {
    const op = ops[i] as number;
    if (op === Op.Release) {
      Atomics.add(ctl, 0, 1);
      continue;
    }
    if (st.failed) continue;
    try {
      switch (op) {
        case Op.Mkdir:
          mkdirSync(ops[i + 1] as string, 0o700);
          break;
        case Op.Open:
          st.path = ops[i + 1] as string;
          st.fd = openSync(st.path, CREATE_FLAGS, (ops[i + 2] as number) & 0o777);
          st.content = st.digest ? createHash("sha256") : null;
          break;
        case Op.Write: {
          const view = views[ops[i + 1] as number] as Uint8Array;
          let at = ops[i + 2] as number;
          const end = ops[i + 3] as number;
          st.content?.update(view.subarray(at, end));
          while (at < end) at += writeSync(st.fd, view, at, end - at);
          break;
        }
        case Op.Close: {
          const fd = st.fd;
          st.fd = -1;
          try {
            if (ops[i + 2]) fchmodSync(fd, ops[i + 1] as number);
          } finally {
            closeSync(fd);
          }
          if (ops[i + 3] !== null && st.content) record(st, `${ops[i + 3] as string}${st.content.digest("hex")}\n`);
          break;
        }
        case Op.Symlink:
          symlinkSync(ops[i + 1] as string, ops[i + 2] as string);
          break;
        case Op.Record:
          record(st, ops[i + 1] as string);
          break;
        default:
          throw new Error(`unknown operation ${op}`);
      }
    } catch (error) {
      const where = op === Op.Write || op === Op.Close ? st.path : op === Op.Symlink ? ops[i + 2] : ops[i + 1];
      fail(st, String(where), error);
    }
  }
}

function messageOf(error: unknown): string {
  return String((error as Error | undefined)?.message ?? error);
}
