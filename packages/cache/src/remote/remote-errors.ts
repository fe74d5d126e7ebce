// Owns what remote faults mean to Castle, whatever the backend: one CastleError per kind of fault
// (unreachable, too slow, refused, bad data, untrusted, cancelled…), with a message that names the
// remote, what was being done and what to check. Backends classify their own failures (S3's SDK
// errors in s3-errors.ts, HTTP statuses in http-client.ts) and build the error here. Hints are
// left to the caller: only it knows whether Castle builds locally, fails, or stops.

import { CastleError, isCastleError } from "@castle/errors";

export type RemoteErrorCode =
  | "CASTLE_REMOTE_UNREACHABLE"
  | "CASTLE_REMOTE_TIMEOUT"
  | "CASTLE_REMOTE_AUTH"
  | "CASTLE_REMOTE_CORRUPT"
  | "CASTLE_REMOTE_UNTRUSTED"
  | "CASTLE_REMOTE_UNSUPPORTED"
  | "CASTLE_REMOTE_ERROR"
  /** Cancelled by the caller (a signal): never the remote's fault. */
  | "CASTLE_CANCELLED";

export interface RemoteContext {
  /** The remote's URL, e.g. s3://bucket/prefix. */
  url: string;
  /** Where requests go, for messages: an endpoint, a registry, a directory. */
  where: string;
  /** What was being done, e.g. "downloading the blob of musl". */
  action: string;
  key?: string;
  /** What to check when access is refused (the credentials this backend reads). */
  authAdvice?: string;
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "EPIPE",
  "ECONNABORTED", "ERR_STREAM_PREMATURE_CLOSE", "UND_ERR_SOCKET", "EADDRNOTAVAIL", "EPROTO",
  "ERR_SSL_WRONG_VERSION_NUMBER", "HPE_INVALID_CONSTANT", "HPE_INVALID_VERSION",
]);
const TIMEOUT_CODES = new Set(["ETIMEDOUT", "ESOCKETTIMEDOUT", "TimeoutError"]);
const ACCESS_CODES = new Set(["EACCES", "EPERM", "EROFS"]);
const TLS_CODES = /^(CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT|ERR_TLS_CERT)/;

/** The kind of a Node network or file error (http, net, tls, fs), or undefined when it is none. */
export function faultCode(error: unknown): RemoteErrorCode | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const e = error as { code?: unknown; name?: unknown; message?: unknown };
  const code = typeof e.code === "string" ? e.code : "";
  if (e.name === "AbortError" || code === "ABORT_ERR") return "CASTLE_CANCELLED";
  if (TIMEOUT_CODES.has(code)) return "CASTLE_REMOTE_TIMEOUT";
  if (ACCESS_CODES.has(code)) return "CASTLE_REMOTE_AUTH";
  if (NETWORK_CODES.has(code) || TLS_CODES.test(code)) return "CASTLE_REMOTE_UNREACHABLE";
  if (typeof e.message === "string" && /socket hang up|premature close|aborted/i.test(e.message)) return "CASTLE_REMOTE_UNREACHABLE";
  return undefined;
}

/** The CastleError for a remote fault of a known kind; detail is the underlying reason. */
export function remoteFault(code: RemoteErrorCode, detail: string, context: RemoteContext, options: { cause?: unknown; data?: Record<string, unknown> } = {}): CastleError {
  const where = context.where && context.where !== context.url ? `${context.url} (${context.where})` : context.url;
  const messages: Record<RemoteErrorCode, string> = {
    CASTLE_REMOTE_UNREACHABLE: `cannot reach the remote cache ${where} while ${context.action}: ${detail}; check the URL and the network`,
    CASTLE_REMOTE_TIMEOUT: `the remote cache ${where} was too slow while ${context.action}: ${detail}`,
    CASTLE_REMOTE_AUTH: `the remote cache ${where} refused access while ${context.action}: ${detail}; ${context.authAdvice ?? "check the credentials"}`,
    CASTLE_REMOTE_CORRUPT: `the remote cache ${where} sent bad data while ${context.action}: ${detail}`,
    CASTLE_REMOTE_UNTRUSTED: `the remote cache ${where} offered an untrusted manifest while ${context.action}: ${detail}`,
    CASTLE_REMOTE_UNSUPPORTED: `the remote cache ${where} cannot be used for ${context.action}: ${detail}`,
    CASTLE_REMOTE_ERROR: `the remote cache ${where} failed while ${context.action}: ${detail}`,
    CASTLE_CANCELLED: `${context.action} was cancelled`,
  };
  return new CastleError(code, messages[code], {
    cause: options.cause,
    data: { url: context.url, where: context.where, key: context.key, ...options.data },
  });
}

/** Any error met while talking to a remote, as a CastleError (CastleErrors pass unchanged). */
export function asRemoteError(error: unknown, context: RemoteContext): CastleError {
  if (isCastleError(error)) return error as CastleError;
  const code = faultCode(error) ?? "CASTLE_REMOTE_ERROR";
  const e = error as { message?: string; code?: string } | undefined;
  const detail = e?.message || e?.code || String(error);
  return remoteFault(code, detail, context, { cause: error });
}

/** The same error with a hint that fits the caller's mode (e.g. `--strict-export`, `cache push`). */
export function withHint(error: CastleError, hint: string): CastleError {
  return new CastleError(error.code, error.message, { data: error.data, cause: error.cause ?? error, hint });
}

/** The CastleError for an HTTP status that is neither success nor "not found". */
export function statusFault(status: number, detail: string, context: RemoteContext): CastleError {
  const code: RemoteErrorCode = status === 401 || status === 403 ? "CASTLE_REMOTE_AUTH" : status === 408 || status === 504 ? "CASTLE_REMOTE_TIMEOUT" : "CASTLE_REMOTE_ERROR";
  return remoteFault(code, `HTTP ${status}${detail ? `: ${detail}` : ""}`, context, { data: { status } });
}
