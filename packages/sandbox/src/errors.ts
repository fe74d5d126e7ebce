// Owns the sandbox's errors: one CastleError subclass per failure a caller may want to tell
// apart, and the mapping from the helper's `error` status (exit 125/126/127, and a `reason`
// for enter's refusals) to them.

import { CastleError, type CastleErrorOptions } from "@castle/errors";

/** The spec is invalid; `data.field` names the bad field (e.g. "root.lowers[3]"). */
export class SandboxSpecError extends CastleError {
  constructor(field: string, message: string, options: CastleErrorOptions = {}) {
    super("CASTLE_SANDBOX_SPEC", `sandbox spec: ${field}: ${message}`, {
      ...options,
      data: { field, ...options.data },
    });
  }
}

/** The sandbox could not be set up (namespaces, mounts, maps...): the helper exited 125. */
export class SandboxSetupError extends CastleError {
  constructor(message: string, options: CastleErrorOptions = {}) {
    super("CASTLE_SANDBOX_SETUP", `sandbox setup failed: ${message}`, {
      hint: "run `castle-sandbox --probe` to see what this machine supports",
      ...options,
    });
  }
}

/** argv[0] was not found inside the sandbox (127), as opposed to a command that exits 127. */
export class SandboxNotFoundError extends CastleError {
  constructor(message: string, options: CastleErrorOptions = {}) {
    super("CASTLE_SANDBOX_NOT_FOUND", `command not found in the sandbox: ${message}`, {
      hint: "check argv[0] and the PATH in the spec's env",
      ...options,
    });
  }
}

/** argv[0] exists inside but cannot be executed (126). */
export class SandboxNotExecutableError extends CastleError {
  constructor(message: string, options: CastleErrorOptions = {}) {
    super("CASTLE_SANDBOX_NOT_EXECUTABLE", `command not executable in the sandbox: ${message}`, {
      hint: "is it a regular file with the x bit, for this architecture?",
      ...options,
    });
  }
}

/** Why `enter` refused a target: stable words in `data.reason`. */
export type EnterFailure = "no-such-process" | "not-a-sandbox" | "permission-denied" | "exited";

const ENTER_HINTS: Record<EnterFailure, string> = {
  "no-such-process": "the sandbox is not running: start it again, then use the initPid its `started` reported",
  "not-a-sandbox": "pass the initPid that `spawn(...).started` reported for a running sandbox",
  "permission-denied": "enter a sandbox as the user that started it",
  exited: "the sandbox ended while entering it",
};

/** `enter` could not join the target: `data.reason` says why (see {@link EnterFailure}). */
export class SandboxEnterError extends CastleError {
  constructor(reason: EnterFailure, message: string, options: CastleErrorOptions = {}) {
    super("CASTLE_SANDBOX_ENTER", `cannot enter the sandbox: ${message}`, {
      hint: ENTER_HINTS[reason],
      ...options,
      data: { reason, ...options.data },
    });
  }
}

/** The compiled helper binary is nowhere to be found. */
export class SandboxHelperMissingError extends CastleError {
  constructor(tried: string[]) {
    super("CASTLE_SANDBOX_MISSING_HELPER", "the castle-sandbox helper binary is missing", {
      data: { tried },
      hint: "run `npm ci` or `npm run build` (needs a C compiler: apt install build-essential), or set CASTLE_SANDBOX_HELPER",
    });
  }
}

/** The caller aborted the sandbox through its AbortSignal; the sandbox was killed. */
export class SandboxAbortedError extends CastleError {
  constructor(reason: unknown) {
    super("CASTLE_CANCELLED", "the sandbox was aborted and killed", { cause: reason });
  }
}

/**
 * The typed error for the helper's `{"event":"error","code":N,"message":...}` status.
 *
 * @example
 * errorFromStatus(127, "exec make: No such file or directory", ["make"]).code; // "CASTLE_SANDBOX_NOT_FOUND"
 */
export function errorFromStatus(code: number, message: string, argv: readonly string[], reason?: string): CastleError {
  const options: CastleErrorOptions = { data: { exitCode: code, helperMessage: message, argv: [...argv] } };
  if (reason !== undefined && reason in ENTER_HINTS) return new SandboxEnterError(reason as EnterFailure, message, options);
  if (code === 127) return new SandboxNotFoundError(message, options);
  if (code === 126) return new SandboxNotExecutableError(message, options);
  return new SandboxSetupError(message, options);
}
