// Owns starting sandboxes: `spawn` validates and serialises the spec, starts the helper with the
// spec on fd 3, reads JSON status lines from fd 4 and holds fd 5 open as the sync fd (when this
// process dies the helper sees EOF there and kills the sandbox); `run` is the common
// collect-the-output case. Never parses the helper's stderr.

import { spawn as spawnChild, type StdioOptions } from "node:child_process";
import { constants } from "node:os";
import type { Readable, Stream, Writable } from "node:stream";
import { text } from "node:stream/consumers";
import { errorFromStatus, SandboxAbortedError, SandboxSetupError } from "./errors";
import { helperPath } from "./helper-path";
import { serializeSpec, validateSpec } from "./spec";
import type { SandboxExit, SandboxSpec, SandboxStarted } from "./types";

type StdioEntry = "pipe" | "inherit" | "ignore" | number | Stream | null | undefined;

export interface SpawnOptions {
  /** Stdio of the command, as in child_process: "pipe" (default), "inherit", "ignore" or [in, out, err]. */
  stdio?: "pipe" | "inherit" | "ignore" | readonly [StdioEntry, StdioEntry, StdioEntry];
  /** Run the helper as this host user (drops privileges when Castle runs as root). Default: the caller. */
  asUser?: { uid: number; gid: number };
  /** The helper binary. Default: {@link helperPath}(). */
  helperPath?: string;
  /** Aborting kills the sandbox; `wait()` then rejects with CASTLE_SANDBOX_ABORTED. */
  signal?: AbortSignal;
}

/** A running sandbox. */
export interface SandboxProcess {
  /** Host pid of the helper (the monitor); signals sent with `kill` go through it. */
  readonly pid: number;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** Resolves once the command has been exec'd; rejects when the sandbox failed before that. */
  readonly started: Promise<SandboxStarted>;
  /** The command's exit; rejects with a typed CastleError when the sandbox could not run it. */
  wait(): Promise<SandboxExit>;
  /** Sends a signal (default SIGTERM), forwarded to the command; SIGKILL takes the whole sandbox down. */
  kill(signal?: NodeJS.Signals): boolean;
}

interface StatusEvent {
  event: "started" | "exit" | "error";
  initPid?: number;
  overlay?: "kernel" | "fuse";
  code?: number;
  signal?: NodeJS.Signals;
  message?: string;
}

function stdioEntries(stdio: SpawnOptions["stdio"]): StdioEntry[] {
  if (stdio === undefined) return ["pipe", "pipe", "pipe"];
  if (typeof stdio === "string") return [stdio, stdio, stdio];
  return [...stdio];
}

/** Silences the "unhandled rejection" of a promise the caller may never look at. */
function quiet<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}

/**
 * Starts `spec.argv` in a new sandbox.
 *
 * Options: `stdio` ("pipe"), `asUser` (the caller), `helperPath` (found by {@link helperPath}),
 * `signal` (none). Throws CASTLE_SANDBOX_SPEC synchronously for an invalid spec.
 *
 * @example
 * const child = spawn({ root: { lowers: [rootfs] }, argv: ["/bin/sh", "-c", "echo hi"] }, { stdio: "inherit" });
 * const { initPid } = await child.started;
 * const { code } = await child.wait(); // 0
 */
export function spawn(spec: SandboxSpec, options: SpawnOptions = {}): SandboxProcess {
  validateSpec(spec);
  const bytes = serializeSpec(spec);
  const helper = options.helperPath ?? helperPath();
  const stdio = [...stdioEntries(options.stdio), "pipe", "pipe", "pipe"] as StdioOptions;
  const child = spawnChild(helper, ["--spec-fd", "3", "--status-fd", "4", "--sync-fd", "5"], {
    stdio,
    cwd: "/",
    ...(options.asUser ? { uid: options.asUser.uid, gid: options.asUser.gid } : {}),
  });

  const specPipe = child.stdio[3] as Writable;
  specPipe.on("error", () => {}); // the helper may die before reading it; its exit says why
  specPipe.end(bytes);
  const status = child.stdio[4] as Readable;
  const sync = (child.stdio as unknown as Readable[])[5] as Readable;
  sync.on("error", () => {});

  let startedEvent: StatusEvent | undefined;
  let exitEvent: StatusEvent | undefined;
  let errorEvent: StatusEvent | undefined;
  let aborted: unknown;
  let resolveStarted!: (value: SandboxStarted) => void;
  let rejectStarted!: (error: unknown) => void;
  const started = quiet(
    new Promise<SandboxStarted>((resolve, reject) => {
      resolveStarted = resolve;
      rejectStarted = reject;
    }),
  );

  let pending = "";
  status.setEncoding("utf8");
  status.on("data", (chunk: string) => {
    pending += chunk;
    let newline: number;
    while ((newline = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      let event: StatusEvent;
      try {
        event = JSON.parse(line) as StatusEvent;
      } catch {
        continue; // not ours; the helper only writes JSON lines here
      }
      if (event.event === "started") {
        startedEvent = event;
        resolveStarted({ initPid: event.initPid ?? -1, overlay: event.overlay ?? "kernel" });
      } else if (event.event === "exit") exitEvent = event;
      else if (event.event === "error") errorEvent = event;
    }
  });
  status.on("error", () => {});

  const onAbort = () => {
    aborted = options.signal?.reason ?? new Error("aborted");
    child.kill("SIGKILL");
  };

  const done = quiet(
    new Promise<SandboxExit>((resolve, reject) => {
      let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
      let statusEnded = false;
      const settle = () => {
        if (!exited || !statusEnded) return;
        options.signal?.removeEventListener("abort", onAbort);
        if (aborted !== undefined) return reject(new SandboxAbortedError(aborted));
        if (errorEvent) return reject(errorFromStatus(errorEvent.code ?? 125, errorEvent.message ?? "", spec.argv));
        if (exitEvent) return resolve(exitEvent.signal ? { code: exitEvent.code ?? 0, signal: exitEvent.signal } : { code: exitEvent.code ?? 0 });
        if (exited.signal) {
          return resolve({ code: 128 + (constants.signals[exited.signal] ?? 0), signal: exited.signal });
        }
        const code = exited.code ?? 125;
        if (code >= 125 && code <= 127 && !startedEvent)
          return reject(errorFromStatus(code, `the helper exited with ${code} without a status (see its stderr)`, spec.argv));
        resolve({ code });
      };
      child.on("error", (error) => {
        options.signal?.removeEventListener("abort", onAbort);
        reject(new SandboxSetupError(`cannot start the helper ${helper}: ${error.message}`, { cause: error, data: { helper } }));
      });
      child.on("exit", (code, signal) => {
        exited = { code, signal };
        settle();
      });
      status.on("close", () => {
        statusEnded = true;
        settle();
      });
    }),
  );
  done.then(
    () => rejectStarted(new SandboxSetupError("the sandbox ended before its command started")),
    (error: unknown) => rejectStarted(error),
  );

  if (options.signal?.aborted) onAbort();
  else options.signal?.addEventListener("abort", onAbort, { once: true });

  return {
    pid: child.pid ?? -1,
    stdin: child.stdin,
    stdout: child.stdout,
    stderr: child.stderr,
    started,
    wait: () => done,
    kill: (signal: NodeJS.Signals = "SIGTERM") => child.kill(signal),
  };
}

export interface RunOptions extends Omit<SpawnOptions, "stdio"> {
  /** Written to the command's stdin, which is then closed. Default: stdin is /dev/null. */
  input?: string | Uint8Array;
}

export interface RunResult extends SandboxExit {
  stdout: string;
  stderr: string;
}

/**
 * Runs `spec.argv` in a sandbox and collects its output. Rejects like `wait()` (typed errors
 * carry `data.stdout` and `data.stderr`); a command that exits non-zero is a normal result.
 *
 * @example
 * const { code, stdout } = await run({ root: { lowers: [rootfs] }, argv: ["/bin/echo", "hi"] });
 * // code === 0, stdout === "hi\n"
 */
export async function run(spec: SandboxSpec, options: RunOptions = {}): Promise<RunResult> {
  const { input, ...rest } = options;
  const child = spawn(spec, { ...rest, stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
  if (input !== undefined && child.stdin) {
    child.stdin.on("error", () => {});
    child.stdin.end(input);
  }
  const [stdout, stderr, exit] = await Promise.all([
    text(child.stdout as Readable),
    text(child.stderr as Readable),
    child.wait().catch((error: unknown) => error as Error),
  ]);
  if (exit instanceof Error) {
    if ("data" in exit && exit.data && typeof exit.data === "object") Object.assign(exit.data, { stdout, stderr });
    throw exit;
  }
  return { ...exit, stdout, stderr };
}
