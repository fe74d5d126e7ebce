// Owns the scheduler's view of the sandbox: the one call it needs, so that the CLI can pass the
// real sandbox (possibly dropping privileges) and nothing here imports a process-wide instance.

import type { Readable } from "node:stream";
import type { EnforcedLimits, SandboxExit, SandboxSpec } from "@castle/sandbox";

export interface SandboxProcess {
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** How the spec's `limits` are enforced, when it has some. */
  readonly limits?: EnforcedLimits;
  wait(): Promise<SandboxExit>;
  kill(signal?: NodeJS.Signals): void;
}

export interface SandboxRunner {
  spawn(spec: SandboxSpec, options: { stdio: ["ignore", "pipe", "pipe"]; signal?: AbortSignal }): SandboxProcess;
}
