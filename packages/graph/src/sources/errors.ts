// Owns the errors the sources module throws: one CastleError subclass with stable codes, plus
// helpers that turn Node's low-level failures (ECONNREFUSED, ENOENT...) into short reasons.

import { CastleError, type CastleErrorOptions } from "@castle/errors";

/** Every code a source can fail with; scripts and the CLI may rely on these. */
export type SourceErrorCode =
  | "CASTLE_OVERRIDE_MISSING"
  | "CASTLE_SOURCE_MISSING"
  | "CASTLE_SOURCE_INVALID"
  | "CASTLE_SOURCE_CHANGED"
  | "CASTLE_SOURCE_IO"
  | "CASTLE_CHECKSUM_MISMATCH"
  | "CASTLE_FETCH_FAILED"
  | "CASTLE_CANCELLED"
  | "CASTLE_EXTRACT_FAILED"
  | "CASTLE_ARCHIVE_UNSAFE"
  | "CASTLE_MISSING_TOOL"
  | "CASTLE_GIT_REF_MISSING"
  | "CASTLE_GIT_COMMIT_MISSING"
  | "CASTLE_GIT_SUBDIR_MISSING";

/** A source that cannot be resolved, fetched, verified or unpacked. */
export class SourceError extends CastleError {
  constructor(code: SourceErrorCode, message: string, options: CastleErrorOptions = {}) {
    super(code, message, options);
  }
}

/** The error to throw when the caller's AbortSignal fired. */
export function abortedError(what: string, signal: AbortSignal): SourceError {
  return new SourceError("CASTLE_CANCELLED", `${what} was cancelled`, { cause: signal.reason });
}

export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortedError(what, signal);
}

/** A short, human reason for a failed network or file operation ("connection refused"). */
export function reasonOf(error: unknown): string {
  const code = errnoCode(error);
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused";
    case "ECONNRESET":
      return "connection reset";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host not found";
    case "ETIMEDOUT":
    case "UND_ERR_CONNECT_TIMEOUT":
      return "connection timed out";
    case "ENOENT":
      return "not found";
    case "EACCES":
      return "permission denied";
    case "UND_ERR_SOCKET":
      return "connection closed early";
    default:
      break;
  }
  const message = error instanceof Error ? error.message : String(error);
  return code ? `${message} (${code})` : message;
}

/** The errno-style code of an error or of the first cause that has one. */
export function errnoCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
