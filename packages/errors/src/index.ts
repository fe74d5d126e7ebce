// Owns CastleError, the base of every error Castle throws: a stable `code` from the closed
// catalogue (catalogue.ts) that scripts and the CLI can rely on, the layer whose work failed, a
// `data` object with the facts, the original error as `cause`, and a message that says what to do.

import type { CastleErrorCode } from "./catalogue";

export { ERROR_CATALOGUE, EXIT_STATUS, isErrorCode, type CastleErrorCode, type ExitStatus } from "./catalogue";

export interface CastleErrorOptions {
  /** Facts about the failure (paths, names, digests), for programs and `--json` output. */
  data?: Record<string, unknown>;
  /** The error that caused this one. */
  cause?: unknown;
  /** A one-line suggestion printed after the message. */
  hint?: string;
  /** The layer whose own work failed (the scheduler sets it when a layer's work throws). */
  layer?: string;
}

export class CastleError extends Error {
  readonly code: CastleErrorCode;
  readonly data: Record<string, unknown>;
  readonly hint: string | undefined;
  /** The layer whose own work failed, once known; set once (the first layer to fail keeps it). */
  layer: string | undefined;

  constructor(code: CastleErrorCode, message: string, options: CastleErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.data = options.data ?? {};
    this.hint = options.hint;
    this.layer = options.layer;
  }
}

/** True for a CastleError from any copy of this module (bundles may hold more than one). */
export function isCastleError(error: unknown): error is CastleError {
  if (!(error instanceof Error)) return false;
  const code: unknown = (error as Error & { code?: unknown }).code;
  return typeof code === "string" && code.startsWith("CASTLE_");
}

/** The message of any thrown value, for logs and wrapping. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
