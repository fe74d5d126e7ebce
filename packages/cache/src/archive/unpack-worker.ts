// Owns the worker thread of an unpack whose decompressor writes to a fifo (zstd started by
// castle-treeutil's helper). The worker reads the fifo with blocking 1 MiB reads into slots of a
// SharedArrayBuffer and posts one small message per filled slot; the main thread parses the slot
// in place and checks every entry (tree-writer.ts), and posts back the resulting filesystem
// operations; the worker carries them out (tree-executor.ts's operations: mkdir, create, write
// bodies straight from the slot, fchmod, close, symlink, content and record hashes) and then
// hands the slot back to its own reader. So the main thread only parses, and a pull's file
// writes and hashing — most of its CPU — run beside the network, zstd and other pulls. Compared
// with a child's stdout socket (a 64 KiB read event and a fresh Buffer per event) there are ~16x
// fewer events, no garbage, and zstd has 1 MiB (fifo) + 4 MiB (slots) of slack.
//
// The worker alternates: run every batch of operations posted so far; read a free slot (a read
// blocks only until zstd writes, and zstd never waits for this worker's operations); else sleep
// on a counter the main thread bumps after each post. The worker's code is unpack-thread.ts;
// what both sides agree on is unpack-protocol.ts.

import { MessageChannel, type MessagePort } from "node:worker_threads";
import type { CastleError } from "@castle/errors";
import { ioError, type TreeExecutor } from "./tree-executor";
import { CONTROL, Op, SLOT, SLOTS, type FromWorker, type UnpackJob } from "./unpack-protocol";
import { acquireWorker, type PooledWorker, releaseWorker } from "./worker-pool";

export interface FifoRead {
  /** Resolves at the fifo's end of file; rejects with the first error of onChunk or of reading. */
  readonly done: Promise<void>;
  /** Stops reading early (after an error elsewhere). A read in progress still needs the fifo's
   * writer to write or exit (kill it), since it cannot be interrupted. */
  stop(): void;
}

/**
 * One unpack's worker: call read() once to start reading fd (a blocking fifo read end, which
 * the caller closes after done settles); it is also the writer's TreeExecutor, whose operations
 * on file bodies refer to the slot being parsed.
 */
export class UnpackWorker implements TreeExecutor {
  private readonly pooled: PooledWorker;
  private readonly sab = new SharedArrayBuffer(CONTROL + SLOT * SLOTS);
  private readonly ctl = new Int32Array(this.sab, 0, 3);
  private readonly views = Array.from({ length: SLOTS }, (_, i) => Buffer.from(this.sab, CONTROL + i * SLOT, SLOT));
  private readonly port: MessagePort;
  private ops: unknown[] = [];
  private slot = -1;
  private failure: CastleError | undefined;
  private closing = false;
  private readonly finished: Promise<string | null>;
  private onSlot: ((message: FromWorker) => void) | undefined;
  private onEnd: ((error: Error | undefined) => void) | undefined;

  constructor(fd: number, digest: boolean, private readonly root: string) {
    this.pooled = acquireWorker("unpack-thread");
    const channel = new MessageChannel();
    this.port = channel.port1;
    this.finished = new Promise<string | null>((resolve) => {
      this.pooled.onMessage = (raw) => {
        const message = raw as FromWorker;
        if (message.failed) this.failure ??= this.toError(message.failed);
        switch (message.type) {
          case "slot":
            this.onSlot?.(message);
            break;
          case "end":
            this.onEnd?.(message.error ? new Error(`reading the decompressor's output: ${message.error}`) : undefined);
            break;
          case "finished":
            this.port.close();
            releaseWorker("unpack-thread", this.pooled);
            resolve(message.digest ?? null);
            break;
          default:
            break;
        }
      };
      this.pooled.onFailure = (error) => {
        this.failure ??= ioError(this.root, error.message, error);
        this.onEnd?.(error);
        this.port.close();
        releaseWorker("unpack-thread", this.pooled);
        resolve(null);
      };
    });
    const job: UnpackJob = { fd, sab: this.sab, port: channel.port2, slot: SLOT, slots: SLOTS, control: CONTROL, digest };
    this.pooled.worker.postMessage(job, [channel.port2]);
  }

  /** The first failure the worker reported so far. */
  get failed(): CastleError | undefined {
    return this.failure;
  }

  /** Settles once the worker's job is over (after finish or abort): it no longer reads fd. */
  get jobOver(): Promise<void> {
    return this.finished.then(() => {});
  }

  /**
   * Passes every slot the worker fills to onChunk (with the slot to give setSlot), in order, until
   * the fifo's end. onChunk must call endSlot() once done with a slot; if it throws, reading stops
   * and done rejects with that error.
   */
  read(onChunk: (chunk: Buffer, slot: number) => void): FifoRead {
    let failure: Error | undefined;
    const stop = () => {
      Atomics.store(this.ctl, 1, 1);
      this.wake();
    };
    const done = new Promise<void>((resolve, reject) => {
      this.onEnd = (error) => {
        this.onSlot = undefined;
        this.onEnd = undefined;
        const first = failure ?? error;
        if (first) reject(first);
        else resolve();
      };
      this.onSlot = (message) => {
        const slot = message.slot as number;
        if (failure) return this.releaseHere();
        try {
          onChunk((this.views[slot] as Buffer).subarray(0, message.n), slot);
        } catch (error) {
          failure = error as Error;
          this.ops = []; // The slot's operations are dropped with it.
          this.releaseHere();
          stop();
        }
      };
    });
    done.catch(() => {}); // Observed by the caller.
    return { done, stop };
  }

  setSlot(slot: number): void {
    this.slot = slot;
  }

  /** Posts the operations of the current slot; the last one hands the slot back to the reader. */
  endSlot(): void {
    this.ops.push(Op.Release);
    this.post();
  }

  mkdir(_path: string, abs: string): void {
    this.ops.push(Op.Mkdir, abs);
  }

  createFile(_path: string, abs: string, mode: number): void {
    this.ops.push(Op.Open, abs, mode);
  }

  write(_chunk: Buffer, start: number, end: number): void {
    this.ops.push(Op.Write, this.slot, start, end);
  }

  closeFile(mode: number, fix: boolean, record: string | undefined): void {
    this.ops.push(Op.Close, mode, fix, record ?? null);
  }

  symlink(_path: string, target: string, abs: string): void {
    this.ops.push(Op.Symlink, target, abs);
  }

  record(text: string): void {
    this.ops.push(Op.Record, text);
  }

  async finish(): Promise<string | undefined> {
    this.end("finish");
    const digest = await this.finished;
    if (this.failure) throw this.failure;
    return digest ?? undefined;
  }

  async abort(): Promise<void> {
    this.ops = []; // Nothing more is written: the tree is about to be removed.
    Atomics.store(this.ctl, 1, 1);
    this.end("abort");
    await this.finished;
  }

  private end(type: "finish" | "abort"): void {
    if (this.closing) return;
    this.closing = true;
    this.post();
    this.port.postMessage({ type });
    this.wake();
  }

  private post(): void {
    if (this.ops.length === 0) return;
    this.port.postMessage({ type: "ops", ops: this.ops });
    this.ops = [];
    this.wake();
  }

  /** A slot given back by this thread (its operations were never posted). */
  private releaseHere(): void {
    Atomics.add(this.ctl, 0, 1);
    this.wake();
  }

  private wake(): void {
    Atomics.add(this.ctl, 2, 1);
    Atomics.notify(this.ctl, 2);
  }

  private toError(failed: { path: string; message: string }): CastleError {
    const relative = failed.path.startsWith(`${this.root}/`) ? failed.path.slice(this.root.length + 1) : failed.path;
    return ioError(relative, failed.message);
  }
}
