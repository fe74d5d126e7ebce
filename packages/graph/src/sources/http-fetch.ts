// Owns downloading one pinned file: each candidate URL in turn (http, https or file), streamed
// into a temp file while hashing, renamed to downloads/<sha256> only once the digest matches,
// so nothing partial is ever visible and a second realization reuses the file. Each URL has an
// idle timeout; the caller's AbortSignal stops everything. One error reports every URL tried.

import { createHash, randomBytes } from "node:crypto";
import { closeSync, createReadStream, existsSync, openSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SourceError, abortedError, reasonOf } from "./errors";

export interface DownloadRequest {
  /** Source name, for messages. */
  name: string;
  sha256: string;
  /** Candidate URLs, best first (see mirrors.ts). */
  urls: string[];
  /** Where verified files live, by digest (store.dir("downloads")). */
  downloadsDir: string;
  /** Where partial files are written (on the same filesystem as downloadsDir). */
  tmpDir: string;
  fetch: typeof globalThis.fetch;
  timeoutMs: number;
  signal?: AbortSignal;
  onProgress?: (bytesDone: number, bytesTotal: number | undefined) => void;
}

export interface FailedAttempt {
  url: string;
  reason: string;
  /** The digest of what was received, when the whole file arrived but did not match. */
  actual?: string;
}

class AttemptError extends Error {
  constructor(message: string, readonly actual?: string) {
    super(message);
  }
}

/** Path of the verified file downloads/<sha256>, downloading it when it is not there yet. */
export async function downloadVerified(request: DownloadRequest): Promise<string> {
  const target = join(request.downloadsDir, request.sha256);
  // A file kept from an earlier download is checked again: one damaged on disk since is fetched anew.
  if (existsSync(target)) {
    if ((await hashFile(target)) === request.sha256) return target;
    removeQuiet(target);
  }
  const attempts: FailedAttempt[] = [];
  for (const url of request.urls) {
    if (request.signal?.aborted) throw abortedError(`downloading ${request.name}`, request.signal);
    const temp = join(request.tmpDir, `download-${request.sha256.slice(0, 16)}-${process.pid}-${randomBytes(4).toString("hex")}`);
    try {
      const actual = await fetchInto(url, temp, request);
      if (actual !== request.sha256) throw new AttemptError(`checksum mismatch: got sha256 ${actual}`, actual);
      renameSync(temp, target);
      return target;
    } catch (error) {
      removeQuiet(temp);
      if (request.signal?.aborted) throw abortedError(`downloading ${request.name}`, request.signal);
      const actual = error instanceof AttemptError ? error.actual : undefined;
      attempts.push({ url, reason: error instanceof AttemptError ? error.message : reasonOf(error), ...(actual ? { actual } : {}) });
    }
  }
  throw downloadError(request, attempts);
}

function downloadError(request: DownloadRequest, attempts: FailedAttempt[]): SourceError {
  const { name, sha256: expected } = request;
  const lines = attempts.map((a) => `  ${a.url}: ${a.reason}`).join("\n");
  if (attempts.length > 0 && attempts.every((a) => a.actual !== undefined)) {
    const first = attempts[0]!;
    return new SourceError(
      "CASTLE_CHECKSUM_MISMATCH",
      `${name}: ${first.url} served a file with sha256 ${first.actual}, but the definition pins ${expected}` +
        (attempts.length > 1 ? `\n${lines}` : "") +
        "\nIf the new file is trusted, update sha256 in the definition; otherwise use another mirror.",
      { data: { name, url: first.url, expected, actual: first.actual, attempts } },
    );
  }
  return new SourceError(
    "CASTLE_FETCH_FAILED",
    `${name}: could not download sha256 ${expected} from any of ${attempts.length} URL(s):\n${lines}`,
    {
      data: { name, expected, attempts },
      hint: "check the URLs and your network, or add a mirror with CASTLE_MIRRORS",
    },
  );
}

/** Streams url into file, returning the sha256 of what arrived. */
async function fetchInto(url: string, file: string, request: DownloadRequest): Promise<string> {
  const fd = openSync(file, "wx", 0o644);
  const hash = createHash("sha256");
  let done = 0;
  let lastReport = 0;
  const sink = (chunk: Uint8Array, total: number | undefined) => {
    writeSync(fd, chunk);
    hash.update(chunk);
    done += chunk.byteLength;
    const now = Date.now();
    if (request.onProgress && now - lastReport >= 100) {
      lastReport = now;
      request.onProgress(done, total);
    }
  };
  try {
    const total = url.startsWith("file:") ? await readFileUrl(url, sink) : await readHttpUrl(url, request, sink, () => done);
    if (total !== undefined && done < total) throw new AttemptError(`truncated: got ${done} of ${total} bytes`);
    request.onProgress?.(done, total);
  } finally {
    closeSync(fd);
  }
  return hash.digest("hex");
}

type Sink = (chunk: Uint8Array, total: number | undefined) => void;

async function readFileUrl(url: string, sink: Sink): Promise<number> {
  const path = fileURLToPath(url);
  const total = statSync(path).size;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) sink(chunk as Buffer, total);
  return total;
}

async function readHttpUrl(url: string, request: DownloadRequest, sink: Sink, received: () => number): Promise<number | undefined> {
  const controller = new AbortController();
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error("timed out"));
    }, request.timeoutMs);
  };
  const onAbort = () => controller.abort(request.signal?.reason);
  request.signal?.addEventListener("abort", onAbort, { once: true });
  let total: number | undefined;
  try {
    arm();
    const response = await request.fetch(url, {
      signal: controller.signal,
      redirect: "follow",
      // The pinned bytes are the file as published: never let the client decode it.
      headers: { "accept-encoding": "identity" },
    });
    if (!response.ok || response.body === null) {
      await response.body?.cancel().catch(() => undefined);
      throw new AttemptError(`HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ""}`);
    }
    const length = Number(response.headers.get("content-length"));
    total = Number.isSafeInteger(length) && length >= 0 && !response.headers.get("content-encoding") ? length : undefined;
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      arm();
      sink(chunk, total);
    }
    return total;
  } catch (error) {
    if (error instanceof AttemptError) throw error;
    const seconds = Math.round(request.timeoutMs / 1000);
    if (timedOut) throw new AttemptError(`timed out: no data for ${seconds} s after ${received()} bytes`);
    if (received() > 0) {
      const of = total === undefined ? "" : ` of ${total}`;
      const why = reasonOf(error);
      const detail = why === "connection closed early" ? "" : ` (${why})`;
      throw new AttemptError(`truncated: connection closed after ${received()}${of} bytes${detail}`);
    }
    throw error;
  } finally {
    clearTimeout(timer);
    request.signal?.removeEventListener("abort", onAbort);
  }
}

async function hashFile(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

function removeQuiet(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Never created, or already gone.
  }
}
