// Owns the read-only HTTP(S) backend (https://cache.example.com/castle): any static web server or
// CDN serving a cache exported to a directory or a bucket, for a machine with no credentials.
// GET <url>/keys/<key> and <url>/blobs/sha256/<digest>; 404 (and 410) is a miss. It cannot be
// written to or listed (a static server has no listing Castle can rely on).

import { CastleError } from "@castle/errors";
import type { BlobDigest, LayerKey } from "../types";
import { type RemoteBackend, blobLabel, blobPath, contextOf, keyPath } from "./backend";
import { type HttpClient, type HttpResponse, discard, readText } from "./http-client";
import { MAX_MANIFEST_BYTES } from "./manifest";
import { asRemoteError, remoteFault, statusFault } from "./remote-errors";

export class HttpBackend implements RemoteBackend {
  readonly where: string;
  readonly writable = false;
  readonly authAdvice = "the server refused Castle's request; an HTTP cache must be readable without credentials";
  private readonly base: URL;

  constructor(readonly url: string, private readonly http: HttpClient) {
    this.base = parseHttpUrl(url);
    this.where = this.base.host;
  }

  async getManifest(key: LayerKey, signal?: AbortSignal): Promise<string | undefined> {
    const response = await this.get(keyPath(key), `looking up ${key}`, signal, key);
    return response && (await readText(response, MAX_MANIFEST_BYTES));
  }

  async getBlob(digest: BlobDigest, signal?: AbortSignal, name?: string) {
    const response = await this.get(blobPath(digest), `downloading ${blobLabel(digest, name)}`, signal);
    if (!response) return undefined;
    const length = Number(response.headers["content-length"] ?? -1);
    return { body: response.body, size: Number.isSafeInteger(length) ? length : -1 };
  }

  async hasBlob(): Promise<boolean> {
    return false; // Never asked: this backend is not written to.
  }

  putBlob(): Promise<void> {
    return Promise.reject(this.readOnly("uploading"));
  }

  putManifest(): Promise<void> {
    return Promise.reject(this.readOnly("writing a manifest"));
  }

  // eslint-disable-next-line require-yield
  async *listKeys(): AsyncGenerator<LayerKey> {
    throw remoteFault("CASTLE_REMOTE_UNSUPPORTED", "a static HTTP server cannot be listed; name a system to pull what it needs (castle cache pull <url> <dir>)", contextOf(this, "listing"));
  }

  async close(): Promise<void> {
    this.http.close();
  }

  private async get(path: string, action: string, signal: AbortSignal | undefined, key?: LayerKey): Promise<HttpResponse | undefined> {
    let response: HttpResponse;
    try {
      response = await this.http.request({ method: "GET", url: new URL(path, this.base), signal });
    } catch (error) {
      throw asRemoteError(error, contextOf(this, action, key));
    }
    if (response.status === 200) return response;
    discard(response);
    if (response.status === 404 || response.status === 410) return undefined;
    throw statusFault(response.status, "", contextOf(this, action, key));
  }

  private readOnly(action: string): CastleError {
    return remoteFault("CASTLE_REMOTE_UNSUPPORTED", "an HTTP remote is read-only; export to the bucket or directory it serves", contextOf(this, action));
  }
}

/** The base URL of an http(s) remote, ending in "/" so that paths resolve under it. */
export function parseHttpUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw badUrl(url, "it is not a URL", error);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw badUrl(url, "it is not http(s)");
  if (parsed.search || parsed.hash) throw badUrl(url, "it has a query or a fragment");
  if (parsed.username || parsed.password) throw badUrl(url, "it holds credentials; an HTTP cache is read without any");
  if (!parsed.pathname.endsWith("/")) parsed.pathname += "/";
  return parsed;
}

function badUrl(url: string, why: string, cause?: unknown): CastleError {
  return new CastleError("CASTLE_REMOTE_URL", `bad remote cache URL ${JSON.stringify(url)}: ${why}`, {
    cause,
    data: { url },
    hint: "write it as https://host/path, the directory that holds keys/ and blobs/",
  });
}
