// Owns keeping worker threads for the unpacker: a worker's code is a string (so it loads the same
// way from source, under tests and from the esbuild bundle), one pool per code string, and idle
// workers are unreferenced so they never keep the process alive. Starting a worker costs tens of
// ms, so each is started once per concurrent unpack per process and reused.

import { Worker } from "node:worker_threads";

const MAX_IDLE = 8;

export class PooledWorker {
  readonly worker: Worker;
  onMessage: ((message: unknown) => void) | undefined;
  onFailure: ((error: Error) => void) | undefined;
  broken = false;

  constructor(source: string) {
    // execArgv []: a worker needs no loader hooks (tsx, test runners) for its builtins-only code.
    this.worker = new Worker(source, { eval: true, execArgv: [] });
    this.worker.on("message", (message: unknown) => this.onMessage?.(message));
    this.worker.on("error", (error) => {
      this.broken = true;
      this.onFailure?.(error);
    });
    this.worker.on("exit", () => {
      this.broken = true;
      this.onFailure?.(new Error("an unpack worker thread exited"));
    });
  }
}

const idle = new Map<string, PooledWorker[]>();

/** A worker running source, idle or new, referenced until released. */
export function acquireWorker(source: string): PooledWorker {
  const pooled = idle.get(source)?.pop() ?? new PooledWorker(source);
  pooled.worker.ref();
  return pooled;
}

/** Hands a worker back once its job is over (a broken one is terminated instead). */
export function releaseWorker(source: string, pooled: PooledWorker): void {
  pooled.onMessage = undefined;
  pooled.onFailure = undefined;
  const list = idle.get(source) ?? [];
  if (pooled.broken || list.length >= MAX_IDLE) {
    void pooled.worker.terminate();
    return;
  }
  pooled.worker.unref();
  list.push(pooled);
  idle.set(source, list);
}
