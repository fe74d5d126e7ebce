// Owns unpacking a compressed archive stream into an empty directory, end to end as a stream:
// compressed bytes are hashed (the blob digest) as they arrive and piped to a decompressor in
// another process, whose output is parsed and written straight to disk. Whatever goes wrong —
// an unsafe or corrupt entry, a truncated stream, a digest that does not match — everything
// written under root is removed before the CastleError is thrown.

import { createHash } from "node:crypto";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { CastleError } from "@castle/errors";
import type { BlobDigest } from "../types";
import { removeTree } from "../store/remove-tree";
import { type Codec, type Compression, sniffCompression, startDecompressor } from "./compress";
import { TarReader, type TarLimits } from "./tar-reader";
import { TreeWriter, type WriterLimits } from "./tree-writer";

export interface UnpackOptions extends TarLimits, WriterLimits {
  /** The sha256 the compressed bytes must have; a mismatch discards everything. */
  expectBlobDigest?: BlobDigest;
  /** The size in bytes the compressed stream must have. */
  expectSize?: number;
  /** Called as compressed bytes arrive, with the running total. */
  onBytes?: (bytesDone: number) => void;
  signal?: AbortSignal;
}

export interface UnpackResult {
  blobDigest: BlobDigest;
  /** Bytes of the compressed stream. */
  size: number;
  compression: Compression;
  entries: number;
  /** Bytes of file contents written. */
  bytes: number;
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
  const writer = new TreeWriter(root, options);
  const reader = new TarReader((header) => writer.entry(header), options);
  const hash = createHash("sha256");
  let size = 0;
  let codec: Codec | undefined;
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
    const started = startDecompressor(compression);
    codec = started;
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
      if (!started.input.write(head)) await drained(started);
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
        if (!started.input.write(chunk)) await drained(started);
      }
      started.input.end();
    })();
    // 'data' events rather than for-await: one call per chunk, no promise per chunk.
    const draining = new Promise<void>((resolve, reject) => {
      const output = started.output;
      output.on("data", (chunk: Buffer) => {
        try {
          reader.push(chunk);
        } catch (error) {
          output.destroy();
          reject(error);
        }
      });
      output.once("end", () => {
        try {
          reader.end();
          resolve();
        } catch (error) {
          reject(error);
        }
      });
      output.once("error", reject);
      output.once("close", () => reject(new Error("the decompressor's output closed early")));
    });
    await settleTogether([feeding, draining], () => {
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
    writer.finish();
    return { blobDigest, size, compression, entries: writer.entries, bytes: writer.bytes };
  } catch (error) {
    codec?.kill();
    input.destroy();
    writer.close();
    clearDirectory(root);
    if (inputError?.error === error || error instanceof CastleError) throw error;
    // Anything else came from the decompressor: the blob is not what it claims to be.
    throw corruptBlob(`the blob does not decompress: ${(error as Error).message}`);
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
  }
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

async function drained(codec: Codec): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const input = codec.input;
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
