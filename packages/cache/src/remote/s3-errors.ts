// Owns what S3 failures mean to Castle. `isNotFound` is the one place where "the object is not
// there" is recognised (it is a cache miss, not an error); everything else becomes a CastleError
// whose code says what kind of fault it was and whose message says what to check.

import { type CastleError, isCastleError } from "@castle/errors";
import { type RemoteErrorCode, remoteFault } from "./remote-errors";

interface SdkLikeError {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { statusCode?: number };
  cause?: unknown;
}

const NOT_FOUND_NAMES = new Set(["NoSuchKey", "NotFound", "NoSuchUpload"]);
const AUTH_NAMES = new Set([
  "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
  "TokenRefreshRequired", "AllAccessDisabled", "CredentialsProviderError", "AuthorizationHeaderMalformed",
  "InvalidClientTokenId", "UnrecognizedClientException", "NoSuchBucket", "PermanentRedirect",
]);
const TIMEOUT_CODES = new Set(["TimeoutError", "RequestTimeout", "RequestTimeoutException", "ETIMEDOUT", "ESOCKETTIMEDOUT"]);
const NETWORK_CODES = new Set([
  "ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "EPIPE",
  "ECONNABORTED", "ERR_STREAM_PREMATURE_CLOSE", "UND_ERR_SOCKET", "EADDRNOTAVAIL",
]);

function status(error: SdkLikeError): number | undefined {
  return error.$metadata?.httpStatusCode ?? error.$response?.statusCode;
}

/** True when S3 says the object does not exist: the only "not found" Castle recognises. */
export function isNotFound(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const e = error as SdkLikeError;
  if (e.name === "NoSuchBucket" || e.Code === "NoSuchBucket") return false;
  return NOT_FOUND_NAMES.has(e.name ?? "") || NOT_FOUND_NAMES.has(e.Code ?? "") || status(e) === 404;
}

export interface S3Context {
  /** The remote's URL, e.g. s3://bucket/prefix. */
  url: string;
  /** The endpoint requests go to, for messages. */
  endpoint: string;
  /** What was being done, e.g. "downloading blob 1234…". */
  action: string;
  key?: string;
}

/** The CastleError for a failure while talking to S3 (CastleErrors pass through unchanged). */
export function remoteError(error: unknown, context: S3Context): CastleError {
  if (isCastleError(error)) return error as CastleError;
  const e = (typeof error === "object" && error !== null ? error : { message: String(error) }) as SdkLikeError;
  const code = classify(e);
  const detail = e.message || e.name || "unknown error";
  const noBucket = e.name === "NoSuchBucket" || e.Code === "NoSuchBucket";
  return remoteFault(code, noBucket ? `the bucket does not exist (${detail}); check the bucket name, the region and the endpoint` : detail, {
    url: context.url,
    where: context.endpoint,
    action: context.action,
    key: context.key,
    authAdvice: "check the credentials (AWS_ACCESS_KEY_ID/AWS_PROFILE), the bucket's policy, the region and the endpoint",
  }, { cause: error, data: { endpoint: context.endpoint, status: status(e), name: e.name } });
}

function classify(e: SdkLikeError): RemoteErrorCode {
  const names = [e.name, e.code, e.Code].filter((n): n is string => typeof n === "string");
  const cause = e.cause as SdkLikeError | undefined;
  if (cause && typeof cause === "object") names.push(...[cause.name, cause.code].filter((n): n is string => typeof n === "string"));
  if (names.some((n) => n === "AbortError")) return "CASTLE_CANCELLED";
  // The SDK renames a connection that broke (ECONNRESET, EPIPE) "TimeoutError" so that it gets
  // retried; it is not a slow server, and "raise the timeouts" would be the wrong advice.
  const errnos = [e.code, cause && typeof cause === "object" ? cause.code : undefined];
  if (errnos.some((c) => c === "ECONNRESET" || c === "EPIPE")) return "CASTLE_REMOTE_UNREACHABLE";
  if (names.some((n) => TIMEOUT_CODES.has(n))) return "CASTLE_REMOTE_TIMEOUT";
  if (names.some((n) => AUTH_NAMES.has(n))) return "CASTLE_REMOTE_AUTH";
  const http = status(e);
  if (http === 401 || http === 403) return "CASTLE_REMOTE_AUTH";
  if (names.some((n) => NETWORK_CODES.has(n)) || /socket hang up|premature close|aborted/i.test(e.message ?? "")) {
    return "CASTLE_REMOTE_UNREACHABLE";
  }
  return "CASTLE_REMOTE_ERROR";
}
