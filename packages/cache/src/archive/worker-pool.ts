// Owns keeping worker threads for the unpacker, one pool per worker script: idle workers are
// unreferenced so they never keep the process alive. Starting a worker costs tens of ms, so each
// is started once per concurrent unpack per process and reused. A script is found beside the
// running code: <name>.cjs beside the CLI bundle (scripts/bundle-cli.mjs builds it), or
// <name>.ts in this folder when Castle runs from source (tests, benchmarks), through tsx.

import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";

const MAX_IDLE = 8;

export class PooledWorker {
  readonly worker: Worker;
  onMessage: ((message: unknown) => void) | undefined;
  onFailure: ((error: Error) => void) | undefined;
  broken = false;

  constructor(script: string) {
    // execArgv []: the worker needs none of the parent's flags or loader hooks (test runners).
    this.worker = script.endsWith(".ts")
      ? new Worker(fromSource(script), { eval: true, execArgv: [] })
      : new Worker(script, { execArgv: [] });
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

/** A worker running the named script, idle or new, referenced until released. */
export function acquireWorker(name: string): PooledWorker {
  const pooled = idle.get(name)?.pop() ?? new PooledWorker(workerScript(name));
  pooled.worker.ref();
  return pooled;
}

/** Hands a worker back once its job is over (a broken one is terminated instead). */
export function releaseWorker(name: string, pooled: PooledWorker): void {
  pooled.onMessage = undefined;
  pooled.onFailure = undefined;
  const list = idle.get(name) ?? [];
  if (pooled.broken || list.length >= MAX_IDLE) {
    void pooled.worker.terminate();
    return;
  }
  pooled.worker.unref();
  list.push(pooled);
  idle.set(name, list);
}

/** The file of a worker script: the bundled one beside this code, else the source. */
function workerScript(name: string): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const bundled = join(here, `${name}.cjs`);
  return existsSync(bundled) ? bundled : join(here, `${name}.ts`);
}

/** Code that runs a worker's TypeScript source through tsx's require hook (only when Castle itself
 * runs from source: tsx is a development dependency). */
function fromSource(script: string): string {
  const tsx = createRequire(import.meta.url).resolve("tsx/cjs/api");
  return `require(${JSON.stringify(tsx)}).register(); require(${JSON.stringify(script)});`;
}
