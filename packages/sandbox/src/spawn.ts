// Owns starting sandboxes: `spawn` validates the spec, resolves its `limits` (limits.ts), and
// starts the helper on it (helper-process.ts); `run` is the common collect-the-output case.

import type { Readable } from "node:stream";
import { text } from "node:stream/consumers";
import { startHelper, type SandboxProcess, type SpawnOptions } from "./helper-process";
import { applyLimits } from "./limits";
import { serializeSpec, validateSpec } from "./spec";
import type { SandboxExit, SandboxSpec } from "./types";

export type { SandboxProcess, SpawnOptions } from "./helper-process";

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
  const toStarted = (event: { initPid?: number; overlay?: "kernel" | "fuse" }) => ({ initPid: event.initPid ?? -1, overlay: event.overlay ?? "kernel" });
  if (spec.limits === undefined) return startHelper(serializeSpec(spec), spec.argv, options, toStarted);
  const applied = applyLimits(spec, options.asUser);
  let child: SandboxProcess;
  try {
    child = startHelper(serializeSpec(applied.spec), spec.argv, options, toStarted);
  } catch (error) {
    void applied.release();
    throw error;
  }
  // Settled once the helper is gone, whether or not anyone waits: the cgroups go with it.
  const done = child.wait().then(
    async (exit) => {
      const hit = applied.hit(exit);
      await applied.release();
      const { limitHit: _, ...rest } = exit;
      return hit ? { ...rest, limitHit: hit } : rest;
    },
    async (error: unknown) => {
      await applied.release();
      throw error;
    },
  );
  done.catch(() => {});
  return {
    pid: child.pid, stdin: child.stdin, stdout: child.stdout, stderr: child.stderr, started: child.started,
    wait: () => done,
    kill: (signal) => child.kill(signal),
    limits: { cgroups: applied.cgroups, unenforced: applied.unenforced, ...(applied.spec.rlimits ? { rlimits: applied.spec.rlimits } : {}) },
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
