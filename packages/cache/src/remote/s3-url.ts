// Owns turning an `s3://bucket/prefix` URL, options and the environment into one resolved S3
// configuration, the way AWS users expect: the SDK's credential chain, AWS_REGION /
// AWS_DEFAULT_REGION / the profile's region (else us-east-1), and an endpoint override for
// MinIO, s3rver and friends (which then get path-style addressing).

import { CastleError } from "@castle/errors";

export interface S3Location {
  bucket: string;
  /** Key prefix without leading or trailing slashes ("" for the bucket's root). */
  prefix: string;
  /** From `?endpoint=`, `?region=` and `?anonymous=1` in the URL. */
  endpoint?: string;
  region?: string;
  anonymous?: boolean;
}

/** Static credentials; without them the SDK's standard chain (env, profiles, SSO, IMDS) is used. */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3Settings {
  /** Region. Default: ?region=, AWS_REGION, AWS_DEFAULT_REGION, the profile's, else us-east-1. */
  region?: string;
  /** Endpoint URL. Default: ?endpoint=, CASTLE_S3_ENDPOINT, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL. */
  endpoint?: string;
  /** Unsigned requests (public buckets). Default: ?anonymous=1 or CASTLE_S3_ANONYMOUS=1; also used when no credentials are found. */
  anonymous?: boolean;
  credentials?: S3Credentials;
  /** Time to establish a connection, ms. Default 5000. */
  connectTimeoutMs?: number;
  /** Longest silence on an open connection, ms (also while streaming a body). Default 30000. */
  idleTimeoutMs?: number;
  /** Attempts per request, with the SDK's backoff between them. Default 3. */
  maxAttempts?: number;
  /** Environment to read; default process.env. */
  env?: NodeJS.ProcessEnv;
}

export interface ResolvedS3Config {
  bucket: string;
  prefix: string;
  /** undefined: let the SDK resolve it (profile), falling back to us-east-1. */
  region: string | undefined;
  endpoint: string | undefined;
  forcePathStyle: boolean;
  /** true: unsigned; false: signed; "auto": signed when the chain finds credentials. */
  anonymous: boolean | "auto";
  credentials: S3Credentials | undefined;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  maxAttempts: number;
}

/** Parses `s3://bucket[/prefix][?endpoint=…&region=…&anonymous=1]`. */
export function parseS3Url(url: string): S3Location {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw badUrl(url, "it is not a URL", error);
  }
  if (parsed.protocol !== "s3:") throw badUrl(url, "it does not start with s3://");
  const bucket = parsed.hostname;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw badUrl(url, `"${bucket}" is not a valid bucket name`);
  const prefix = decodeURIComponent(parsed.pathname).replace(/^\/+|\/+$/g, "");
  if (prefix.split("/").some((part) => part === "." || part === "..")) throw badUrl(url, "its prefix contains . or ..");
  const location: S3Location = { bucket, prefix };
  for (const [name, value] of parsed.searchParams) {
    if (name === "endpoint") location.endpoint = value;
    else if (name === "region") location.region = value;
    else if (name === "anonymous") location.anonymous = value === "1" || value === "true";
    else throw badUrl(url, `unknown parameter ${name} (known: endpoint, region, anonymous)`);
  }
  return location;
}

/** The full configuration for url: URL parameters, then options, then the environment. */
export function resolveS3Config(url: string, settings: S3Settings = {}): ResolvedS3Config {
  const env = settings.env ?? process.env;
  const location = parseS3Url(url);
  const endpoint = settings.endpoint ?? location.endpoint ?? (env.CASTLE_S3_ENDPOINT || env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined);
  if (endpoint !== undefined && !/^https?:\/\/[^/]+/.test(endpoint)) {
    throw badUrl(url, `the endpoint ${JSON.stringify(endpoint)} is not an http(s) URL`);
  }
  const envAnonymous = env.CASTLE_S3_ANONYMOUS === "1" || env.CASTLE_S3_ANONYMOUS === "true";
  const anonymous = settings.anonymous ?? location.anonymous ?? (envAnonymous ? true : settings.credentials ? false : "auto");
  return {
    bucket: location.bucket,
    prefix: location.prefix,
    region: settings.region ?? location.region ?? (env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined),
    endpoint,
    // Custom endpoints (MinIO, s3rver, Ceph) rarely have per-bucket DNS names.
    forcePathStyle: endpoint !== undefined,
    anonymous,
    credentials: settings.credentials,
    connectTimeoutMs: settings.connectTimeoutMs ?? 5_000,
    idleTimeoutMs: settings.idleTimeoutMs ?? 30_000,
    maxAttempts: settings.maxAttempts ?? 3,
  };
}

/** The object key of a path under the prefix. */
export function objectKey(config: { prefix: string }, path: string): string {
  return config.prefix === "" ? path : `${config.prefix}/${path}`;
}

function badUrl(url: string, why: string, cause?: unknown): CastleError {
  return new CastleError("CASTLE_REMOTE_URL", `bad remote cache URL ${JSON.stringify(url)}: ${why}`, {
    cause,
    data: { url },
    hint: "write it as s3://bucket/prefix, optionally with ?endpoint=http://host:port&region=…",
  });
}
