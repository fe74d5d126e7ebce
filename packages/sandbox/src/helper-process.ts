// Owns one run of the castle-sandbox binary as a child process, shared by `spawn` and `enter`:
// the spec on fd 3, JSON status lines read from fd 4, fd 5 held open as the sync fd (when this
// process dies the helper sees EOF there and kills the sandbox), stdio as asked, and the
// `SandboxProcess` handle both return. Never parses the helper's stderr.

import { spawn as spawnChild, type StdioOptions } from "node:child_process";
import { constants } from "node:os";
import type { Readable, Stream, Writable } from "node:stream";
import { errorFromStatus, SandboxAbortedError, SandboxSetupError } from "./errors";
import { helperPath } from "./helper-path";
import type { EnforcedLimits, SandboxExit, SandboxStarted } from "./types";

type StdioEntry = "pipe" | "inherit" | "ignore" | number | Stream | null | undefined;

export interface SpawnOptions {
  /** Stdio of the command, as in child_process: "pipe" (default), "inherit", "ignore" or [in, out, err]. */
  stdio?: "pipe" | "inherit" | "ignore" | readonly [StdioEntry, StdioEntry, StdioEntry];
  /** Run the helper as this host user (drops privileges when Castle runs as root). Default: the caller. */
  asUser?: { uid: number; gid: number };
  /** The helper binary. Default: {@link helperPath}(). */
  helperPath?: string;
  /** Aborting kills the sandbox; `wait()` then rejects with CASTLE_CANCELLED. */
  signal?: AbortSignal;
}

/** A running sandbox (from `spawn`), or a command entered into one (from `enter`). */
export interface SandboxProcess<Started = SandboxStarted> {
  /** Host pid of the helper (the monitor); signals sent with `kill` go through it. */
  readonly pid: number;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** Resolves once the command has been exec'd; rejects when the sandbox failed before that. */
  readonly started: Promise<Started>;
  /** The command's exit; rejects with a typed CastleError when the sandbox could not run it. */
  wait(): Promise<SandboxExit>;
  /** Sends a signal (default SIGTERM), forwarded to the command; SIGKILL takes the whole sandbox down. */
  kill(signal?: NodeJS.Signals): boolean;
  /** How the spec's `limits` are enforced (spawn with `limits` only). */
  readonly limits?: EnforcedLimits;
}

/** One JSON status line of the helper. */
export interface StatusEvent {
  event: "started" | "exit" | "error";
  initPid?: number;
  /** enter only: host pid of the entered command. */
  pid?: number;
  overlay?: "kernel" | "fuse";
  code?: number;
  signal?: NodeJS.Signals;
  message?: string;
  /** error only, for failures a caller tells apart (e.g. "not-a-sandbox"). */
  reason?: string;
  /** exit only: the command failed with the sandbox's /tmp full. */
  tmpFull?: boolean;
  /** exit only: the command failed with as many tasks as its RLIMIT_NPROC allows. */
  pidsFull?: boolean;
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
 * Starts the helper with `bytes` (a serialised spec) and wraps it in a {@link SandboxProcess}.
 * `argv` only labels errors; `toStarted` turns the `started` status line into what `started`
 * resolves to.
 */
export function startHelper<Started>(
  bytes: Buffer,
  argv: readonly string[],
  options: SpawnOptions,
  toStarted: (event: StatusEvent) => Started,
): SandboxProcess<Started> {
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
  let resolveStarted!: (value: Started) => void;
  let rejectStarted!: (error: unknown) => void;
  const started = quiet(
    new Promise<Started>((resolve, reject) => {
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
        resolveStarted(toStarted(event));
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
        if (errorEvent) return reject(errorFromStatus(errorEvent.code ?? 125, errorEvent.message ?? "", argv, errorEvent.reason));
        if (exitEvent) {
          return resolve({
            code: exitEvent.code ?? 0,
            ...(exitEvent.signal ? { signal: exitEvent.signal } : {}),
            ...(exitEvent.tmpFull ? { limitHit: { limit: "tmp" as const } } : exitEvent.pidsFull ? { limitHit: { limit: "pids" as const } } : {}),
          });
        }
        if (exited.signal) {
          return resolve({ code: 128 + (constants.signals[exited.signal] ?? 0), signal: exited.signal });
        }
        const code = exited.code ?? 125;
        if (code >= 125 && code <= 127 && !startedEvent)
          return reject(errorFromStatus(code, `the helper exited with ${code} without a status (see its stderr)`, argv));
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
