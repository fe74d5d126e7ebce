// Owns talking to `castle-treeutil serve`, one long-lived helper process per Node process that
// runs programs (zstd, castle-treeutil's own commands), makes fifos and calls syncfs for Castle.
// Why: forking copies the forking process's page tables, which from a Node process of a few
// hundred MB blocks the event loop for 10-60 ms per child (measured in README); the helper is
// ~1 MB and spawns with posix_spawn. It is started on first use, never keeps Node alive (its
// pipes are referenced only while a request is pending), and exits when Node's end of its stdin
// closes. When it cannot run (an older binary, CASTLE_TREEUTIL_SERVE=0) callers fall back to
// spawning from Node, so it is a speed-up only, never a requirement.

import { type ChildProcess, spawn } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { treeutilPath } from "./treeutil";

export interface RunSpec {
  /** argv[0] must be an absolute path. */
  argv: string[];
  /** Default "null". `input` fields are written to the program's stdin, each followed by a NUL. */
  stdin?: "null" | { input: string[] } | { path: string };
  /** Default "null". A path is opened write-only and never created (a fifo or an existing file). */
  stdout?: "null" | "capture" | { path: string };
}

export interface RunResult {
  /** Exit code, or -1 when killed by a signal. */
  code: number;
  /** Signal number that killed it, else 0. */
  signal: number;
  stdout: Buffer;
  /** The first 4 KiB of its stderr. */
  stderr: string;
}

export interface RunningProgram {
  readonly pid: number;
  /** Settles when the program has exited (rejects only if the helper itself died). */
  readonly done: Promise<RunResult>;
  /** SIGKILLs the program if it is still running. */
  kill(): void;
}

interface Pending {
  onOk?: (payload: Buffer) => void;
  onStarted?: (pid: number) => void;
  onExit?: (result: RunResult) => void;
  onError: (error: Error) => void;
}

const HELLO = "castle-treeutil serve 2";

export class TreeutilServer {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private buffered: Buffer = Buffer.alloc(0);
  private dead: Error | undefined;
  private readonly stdin: Writable;
  private readonly stdout: Readable & { ref(): void; unref(): void };

  private constructor(private readonly child: ChildProcess, private readonly onDeath: () => void) {
    this.stdin = child.stdin as Writable;
    this.stdout = child.stdout as Readable & { ref(): void; unref(): void };
    this.stdin.on("error", () => {}); // A dead helper shows as its exit below.
    this.stdout.on("data", (chunk: Buffer) => this.receive(chunk));
    child.once("exit", (code, signal) => this.die(new Error(`castle-treeutil serve exited (${signal ?? code})`)));
    child.once("error", (error) => this.die(error));
  }

  /** Starts a helper; resolves undefined when this castle-treeutil cannot serve. */
  static start(onDeath: () => void): Promise<TreeutilServer | undefined> {
    let child: ChildProcess;
    try {
      child = spawn(treeutilPath(), ["serve"], { stdio: ["pipe", "pipe", "ignore"] });
    } catch {
      return Promise.resolve(undefined);
    }
    const server = new TreeutilServer(child, onDeath);
    child.unref();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    return new Promise((resolve) => {
      server.pending.set(0, {
        onOk: (payload) => {
          const ok = payload.toString() === HELLO;
          if (!ok) server.close();
          resolve(ok ? server : undefined);
        },
        onError: () => resolve(undefined),
      });
      server.refresh();
    });
  }

  /** The helper's process id. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Makes a new fifo (mode 0600) in the helper's private directory; returns its path. */
  async fifo(): Promise<string> {
    return (await this.request("fifo", [])).toString();
  }

  /** syncfs(2) on the filesystem that holds path. */
  async syncfs(path: string): Promise<void> {
    await this.request("syncfs", [path]);
  }

  /** Waits until the helper holds a flock on file (created if missing); resolves its handle. */
  async lock(file: string, shared: boolean): Promise<string> {
    return (await this.request("lock", [file, shared ? "sh" : "ex"])).toString();
  }

  /** Releases a lock this helper holds for us. */
  async unlock(handle: string): Promise<void> {
    await this.request("unlock", [handle]);
  }

  /** Starts a program; resolves once it runs (rejects when it cannot be started). */
  run(spec: RunSpec): Promise<RunningProgram> {
    const stdin = spec.stdin ?? "null";
    const stdout = spec.stdout ?? "null";
    const inSpec = stdin === "null" ? "null" : "input" in stdin ? "input" : `path:${stdin.path}`;
    const outSpec = typeof stdout === "string" ? stdout : `path:${stdout.path}`;
    const input = typeof stdin === "object" && "input" in stdin ? stdin.input : [];
    return new Promise((resolve, reject) => {
      let resolveDone!: (result: RunResult) => void;
      let rejectDone!: (error: Error) => void;
      const done = new Promise<RunResult>((res, rej) => {
        resolveDone = res;
        rejectDone = rej;
      });
      done.catch(() => {}); // Observed by the caller.
      let started = false;
      this.send("run", [inSpec, outSpec, String(spec.argv.length), ...spec.argv, ...input], {
        onStarted: (pid) => {
          started = true;
          let exited = false;
          done.then(() => (exited = true), () => (exited = true));
          resolve({ pid, done, kill: () => {
            if (!exited && !this.dead) this.send("kill", [String(pid)], { onOk: () => {}, onError: () => {} });
          } });
        },
        onExit: (result) => resolveDone(result),
        onError: (error) => {
          if (started) rejectDone(error);
          else reject(error);
        },
      });
    });
  }

  /** Closes the helper's stdin: it kills what it still runs and exits. */
  close(): void {
    this.stdin.end();
  }

  private request(op: string, args: string[]): Promise<Buffer> {
    return new Promise((resolve, reject) => this.send(op, args, { onOk: resolve, onError: reject }));
  }

  private send(op: string, args: string[], handlers: Pending): void {
    if (this.dead) {
      handlers.onError(this.dead);
      return;
    }
    for (const arg of args) {
      if (arg.includes("\0")) {
        handlers.onError(new Error("castle-treeutil serve: an argument contains a NUL byte"));
        return;
      }
    }
    const id = this.nextId++;
    this.pending.set(id, handlers);
    this.refresh();
    this.stdin.write(`${id}\0${op}\0${args.length}\0${args.map((a) => `${a}\0`).join("")}`);
  }

  /** Keeps Node alive only while some request waits for the helper. */
  private refresh(): void {
    if (this.pending.size > 0) this.stdout.ref();
    else this.stdout.unref();
  }

  private receive(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    for (;;) {
      const a = this.buffered.indexOf(0);
      const b = a < 0 ? -1 : this.buffered.indexOf(0, a + 1);
      const c = b < 0 ? -1 : this.buffered.indexOf(0, b + 1);
      if (c < 0) return;
      const length = Number(this.buffered.toString("latin1", b + 1, c));
      if (this.buffered.length < c + 1 + length) return;
      const id = Number(this.buffered.toString("latin1", 0, a));
      const kind = this.buffered.toString("latin1", a + 1, b);
      const payload = this.buffered.subarray(c + 1, c + 1 + length);
      this.buffered = this.buffered.subarray(c + 1 + length);
      this.dispatch(id, kind, Buffer.from(payload));
    }
  }

  private dispatch(id: number, kind: string, payload: Buffer): void {
    const handlers = this.pending.get(id);
    if (!handlers) return;
    switch (kind) {
      case "started":
        handlers.onStarted?.(Number(payload.toString()));
        return; // The exit reply follows.
      case "exit": {
        this.pending.delete(id);
        const z1 = payload.indexOf(0);
        const z2 = payload.indexOf(0, z1 + 1);
        const z3 = payload.indexOf(0, z2 + 1);
        const outLength = Number(payload.toString("latin1", z2 + 1, z3));
        handlers.onExit?.({
          code: Number(payload.toString("latin1", 0, z1)),
          signal: Number(payload.toString("latin1", z1 + 1, z2)),
          stdout: payload.subarray(z3 + 1, z3 + 1 + outLength),
          stderr: payload.subarray(z3 + 1 + outLength).toString(),
        });
        break;
      }
      case "ok":
        this.pending.delete(id);
        handlers.onOk?.(payload);
        break;
      default:
        this.pending.delete(id);
        handlers.onError(new Error(payload.toString() || `castle-treeutil serve: ${kind}`));
        break;
    }
    this.refresh();
  }

  private die(error: Error): void {
    if (this.dead) return;
    this.dead = error;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const handlers of pending) handlers.onError(error);
    this.onDeath();
  }
}

let shared: Promise<TreeutilServer | undefined> | undefined;
let deaths = 0;

/**
 * This process's helper, started on first call; undefined when it cannot run here (then callers
 * spawn from Node as before). A helper that dies is restarted on the next call, up to 3 times.
 */
export function treeutilServer(env: NodeJS.ProcessEnv = process.env): Promise<TreeutilServer | undefined> {
  if (env.CASTLE_TREEUTIL_SERVE === "0") return Promise.resolve(undefined);
  shared ??= TreeutilServer.start(() => {
    if (++deaths < 3) shared = undefined;
  });
  return shared;
}
