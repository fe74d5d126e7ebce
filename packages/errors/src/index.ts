// Owns CastleError, the base of every error Castle throws: a stable `code` that scripts and the
// CLI can rely on, a `data` object with the facts, the original error as `cause`, and a message
// that says what to do. Packages subclass it; only the CLI maps codes to exit statuses.

export type CastleErrorCode = `CASTLE_${string}`;

export interface CastleErrorOptions {
  /** Facts about the failure (paths, names, digests), for programs and `--json` output. */
  data?: Record<string, unknown>;
  /** The error that caused this one. */
  cause?: unknown;
  /** A one-line suggestion printed after the message. */
  hint?: string;
}

export class CastleError extends Error {
  readonly code: CastleErrorCode;
  readonly data: Record<string, unknown>;
  readonly hint: string | undefined;

  constructor(code: CastleErrorCode, message: string, options: CastleErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.data = options.data ?? {};
    this.hint = options.hint;
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
