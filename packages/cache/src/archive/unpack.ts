// Owns unpacking a compressed archive stream into an empty directory, end to end as a stream:
// compressed bytes are hashed (the blob digest) as they arrive and piped to a decompressor in
// another process, whose output is parsed, checked and written straight to disk (when
// castle-treeutil's helper runs, zstd's output is read from a fifo by a worker thread that does all
// of that, so this thread only feeds the compressed bytes: see unpack-worker.ts). With
// `digest`, the tree's output digest is computed from the entries as they are written
// (unpack-digest.ts) and handed out as a trusted digest the store accepts without reading the
// tree back. Whatever goes wrong — an unsafe or corrupt entry, a truncated stream, a digest that
// does not match — everything written under root is removed before the CastleError is thrown.

import { createHash } from "node:crypto";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { CastleError } from "@castle/errors";
import type { BlobDigest, TrustedTreeDigest } from "../types";
import { removeTree } from "../store/remove-tree";
import { trustTreeDigest } from "../store/trusted-digest";
import { type Compression, ZSTD_DECOMPRESS_ARGS, sniffCompression, startDecompressor, startServedZstd } from "./compress";
import { TarReader, type TarLimits } from "./tar-reader";
import { TreeWriter, type WriterLimits } from "./tree-writer";
import { unpackOnWorker } from "./unpack-worker";

export interface UnpackOptions extends TarLimits, WriterLimits {
  /** The sha256 the compressed bytes must have; a mismatch discards everything. */
  expectBlobDigest?: BlobDigest;
  /** The size in bytes the compressed stream must have. */
  expectSize?: number;
  /** Called as compressed bytes arrive, with the running total. */
  onBytes?: (bytesDone: number) => void;
  signal?: AbortSignal;
  /**
   * Compute the tree's output digest while writing (see unpack-digest.ts). Default false. The
   * result's treeDigest can then be passed to store.commit as `meta.treeDigest`.
   */
  digest?: boolean;
}

export interface UnpackResult {
  blobDigest: BlobDigest;
  /** Bytes of the compressed stream. */
  size: number;
  compression: Compression;
  entries: number;
  /** Bytes of file contents written. */
  bytes: number;
  /**
   * With option digest: the output digest of root, for store.commit (undefined when the archive
   * was not in Castle's order, so only digesting the tree on disk can tell).
   */
  treeDigest?: TrustedTreeDigest;
}

/** What unpacking the decompressed tar wrote. */
interface Written {
  entries: number;
  bytes: number;
  /** The output digest, or undefined when only digesting the tree on disk can tell. */
  digest: string | undefined;
  digestCounts: { entries: number; bytes: number };
}

/** A running decompressor and the unpack of its output, whichever way they were started. */
interface Unpacking {
  readonly input: Writable;
  /** Resolves once the whole archive is written under root; rejects with the first failure. */
  readonly written: Promise<Written>;
  /** Settles when the decompressor exited (rejects with its complaint). */
  readonly done: Promise<void>;
  /** Stops decompressing and unpacking at once (after an error). */
  kill(): void;
  /** After a failure: resolves once nothing writes under root any more. */
  abort(): Promise<void>;
  /** Releases what is left once everything has settled. */
  close(): void;
}

/**
 * Unpacks the compressed tar read from input into root, which must be an empty directory.
 * Throws CASTLE_ARCHIVE_UNSAFE or CASTLE_ARCHIVE_CORRUPT naming the offending entry, having
 * removed everything it wrote; errors of the input stream itself are passed through unchanged
 * (after the same clean-up) so callers can tell a network fault from a bad archive.
 */
export async function unpackTree(input: Readable, root: string, options: UnpackOptions = {}): Promise<UnpackResult> {
  if (readdirSync(root).length !== 0) {
    throw new CastleError("CASTLE_ARCHIVE_TARGET", `cannot unpack into ${root}: it is not empty`, { data: { root } });
  }
  const hash = createHash("sha256");
  let size = 0;
  let unpacking: Unpacking | undefined;
  let compression: Compression | undefined;
  let inputError: { error: unknown } | undefined;
  const onAbort = () => input.destroy(abortError(options.signal));
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    options.signal?.throwIfAborted();
    const chunks = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    let head: Buffer;
    try {
      head = await readHead(chunks);
    } catch (error) {
      inputError = { error };
      throw error;
    }
    compression = sniffCompression(head);
    if (!compression) throw corruptBlob("the blob is neither zstd nor gzip compressed");
    const started = (unpacking = await startUnpacking(compression, root, options));
    const take = (chunk: Buffer) => {
      hash.update(chunk);
      size += chunk.length;
      if (options.expectSize !== undefined && size > options.expectSize) {
        throw corruptBlob(`the blob is larger than the expected ${options.expectSize} bytes`);
      }
      options.onBytes?.(size);
    };
    const feeding = (async () => {
      take(head);
      if (!started.input.write(head)) await drained(started.input);
      for (;;) {
        let next: IteratorResult<Buffer>;
        try {
          next = await chunks.next();
        } catch (error) {
          inputError = { error };
          throw error;
        }
        if (next.done) break;
        const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value as Uint8Array);
        take(chunk);
        if (!started.input.write(chunk)) await drained(started.input);
      }
      started.input.end();
    })();
    let written: Written | undefined;
    const writing = started.written.then((result) => {
      written = result;
    });
    await settleTogether([feeding, writing], () => {
      started.kill();
      input.destroy();
    });
    await started.done.catch((error: unknown) => {
      throw corruptBlob(`the blob does not decompress: ${(error as Error).message}`);
    });
    const blobDigest = hash.digest("hex");
    if (options.expectSize !== undefined && size !== options.expectSize) {
      throw corruptBlob(`the blob has ${size} bytes, expected ${options.expectSize}`);
    }
    if (options.expectBlobDigest !== undefined && blobDigest !== options.expectBlobDigest) {
      throw new CastleError("CASTLE_ARCHIVE_CORRUPT", `the blob's sha256 is ${blobDigest}, expected ${options.expectBlobDigest}; it was discarded`, {
        data: { expected: options.expectBlobDigest, actual: blobDigest },
        hint: "the blob was damaged or replaced; nothing was kept",
      });
    }
    const tree = written as Written;
    const result: UnpackResult = { blobDigest, size, compression, entries: tree.entries, bytes: tree.bytes };
    if (tree.digest !== undefined) result.treeDigest = trustTreeDigest(root, { digest: tree.digest, ...tree.digestCounts });
    return result;
  } catch (error) {
    unpacking?.kill();
    input.destroy();
    await unpacking?.abort();
    clearDirectory(root);
    if (inputError?.error === error || error instanceof CastleError) throw error;
    // Anything else came from the decompressor: the blob is not what it claims to be.
    throw corruptBlob(`the blob does not decompress: ${(error as Error).message}`);
  } finally {
    unpacking?.close();
    options.signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * zstd through castle-treeutil's helper and a fifo read by a worker thread, which unpacks there
 * (unpack-worker.ts), when possible; else a child process (or zlib) whose output arrives as stream
 * events and is unpacked on this thread.
 */
async function startUnpacking(compression: Compression, root: string, options: UnpackOptions): Promise<Unpacking> {
  const served = compression === "zstd" ? await startServedZstd(ZSTD_DECOMPRESS_ARGS, "fifo") : undefined;
  if (served) {
    const run = unpackOnWorker(served.outputFd as number, root, options);
    return {
      input: served.input as Writable,
      written: run.done,
      done: served.done,
      kill: () => {
        run.stop();
        served.kill();
      },
      abort: () => run.over,
      // The worker may be in a read of the fifo until its job ends: close the fd only then.
      close: () => void run.over.then(() => served.closeOutput()),
    };
  }
  const codec = startDecompressor(compression);
  const writer = new TreeWriter(root, options, { digest: options.digest });
  const reader = new TarReader((header) => writer.entry(header), options);
  const output = codec.output;
  // 'data' events rather than for-await: one call per chunk, no promise per chunk.
  const parsed = new Promise<void>((resolve, reject) => {
    output.on("data", (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (error) {
        output.destroy();
        reject(error);
      }
    });
    output.once("end", resolve);
    output.once("error", reject);
    output.once("close", () => reject(new Error("the decompressor's output closed early")));
  });
  const written = parsed.then(async (): Promise<Written> => {
    reader.end();
    const digest = await writer.finish();
    return { entries: writer.entries, bytes: writer.bytes, digest, digestCounts: writer.digestCounts };
  });
  written.catch(() => {}); // Observed by the caller.
  return {
    input: codec.input,
    written,
    done: codec.done,
    kill: () => {
      output.destroy();
      codec.kill();
    },
    abort: () => writer.close(),
    close: () => {},
  };
}

/** The first bytes of the stream (at least 4 unless it is shorter), to recognise the format. */
async function readHead(chunks: AsyncIterator<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  let length = 0;
  while (length < 4) {
    const next = await chunks.next();
    if (next.done) break;
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value as Uint8Array);
    parts.push(chunk);
    length += chunk.length;
  }
  if (length === 0) throw corruptBlob("the blob is empty");
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
}

/**
 * Waits for all tasks; on the first failure calls stop() so the others end soon, waits for them,
 * and rethrows the first failure (later ones are consequences of stopping).
 */
async function settleTogether(tasks: Array<Promise<void>>, stop: () => void): Promise<void> {
  let first: { error: unknown } | undefined;
  await Promise.all(
    tasks.map((task) =>
      task.catch((error: unknown) => {
        if (!first) {
          first = { error };
          stop();
        }
      }),
    ),
  );
  if (first) throw first.error;
}

async function drained(input: Writable): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const finish = (error?: Error) => {
      input.off("drain", onDrain);
      input.off("close", onClose);
      if (error) reject(error);
      else resolve();
    };
    const onDrain = () => finish();
    const onClose = () => finish(new Error("the decompressor stopped reading"));
    input.once("drain", onDrain);
    input.once("close", onClose);
  });
}

/** Removes everything inside dir, keeping dir itself. */
export function clearDirectory(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) removeTree(join(dir, name));
}

function corruptBlob(message: string): CastleError {
  return new CastleError("CASTLE_ARCHIVE_CORRUPT", message, { hint: "the blob is damaged or was not made by Castle; nothing was kept" });
}

function abortError(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error("aborted");
}
