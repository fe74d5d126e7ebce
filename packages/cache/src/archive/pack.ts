// Owns packing a layer tree into a deterministic, compressed tar: entries in walkTree order (the
// same walk the output digest uses), mtimes 0, owners 0/0 with no names, modes kept, whiteouts as
// OCI `.wh.<name>` files and opaque directories as `<dir>/.wh..wh..opq`. The same tree always
// gives the same bytes (a golden test holds them). The tar is written by `castle-treeutil pack`
// (native/pack.c), compiled with Castle on every machine: with castle-treeutil's helper running,
// it writes straight into zstd's input and zstd writes the blob file, so this process only hashes
// the blob; otherwise Castle spawns it and feeds its output to the compressor.

import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, createWriteStream, openSync, readSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { pipeline } from "node:stream/promises";
import { resolve } from "node:path";
import { Readable } from "node:stream";
import { CastleError, isCastleError } from "@castle/errors";
import type { BlobDigest } from "../types";
import { treeutilPath } from "../store/treeutil";
import type { RunResult } from "../store/treeutil-serve";
import { type Codec, type Compression, ProgramFailed, defaultCompression, startCompressor, startServedZstd, zstdCompressArgs } from "./compress";
import { WHITEOUT_PREFIX } from "./safe-path";

export interface PackOptions {
  /** Compression of the blob. Default: defaultCompression() (zstd when installed, else gzip). */
  compression?: Compression;
  /** Compression level. Default: 3 for zstd, 6 for gzip. */
  level?: number;
  /** Stops packing; the stream errors with the signal's reason. */
  signal?: AbortSignal;
}

export interface PackedBlob {
  /** sha256 of the compressed bytes: the blob's name in a remote. */
  digest: BlobDigest;
  /** Bytes of the compressed blob. */
  size: number;
  compression: Compression;
}

/** Size of the buffers the blob is hashed in. */
const CHUNK = 1 << 20;

/**
 * Packs the tree at root into a compressed tar stream. The stream ends only after the packer and
 * the compressor exited cleanly, and errors (CastleError for unpackable trees) otherwise;
 * destroying it stops packing.
 */
export function packTree(root: string, options: PackOptions = {}): Readable {
  const codec = startCompressor(options.compression ?? defaultCompression(), options.level);
  const writing = feedTar(root, codec, options.signal);
  writing.catch(() => undefined); // Awaited below, once the compressor's output has ended.
  async function* chunks(): AsyncGenerator<Buffer> {
    try {
      try {
        for await (const chunk of codec.output as AsyncIterable<Buffer>) yield chunk;
        await writing;
        await codec.done;
      } catch (error) {
        throw packFailed(root, fromPackProgram(error));
      }
    } finally {
      codec.kill();
    }
  }
  return Readable.from(chunks(), { objectMode: false, highWaterMark: CHUNK });
}

/**
 * Packs the tree at root into file, hashing the compressed bytes on the way. onChunk sees every
 * compressed chunk in order (e.g. to compute S3 ETags; a chunk is valid only during the call). On
 * failure the file may be partial: the caller owns and removes it.
 */
export async function packTreeToFile(
  root: string, file: string, options: PackOptions & { onChunk?: (chunk: Buffer) => void } = {},
): Promise<PackedBlob> {
  const compression = options.compression ?? defaultCompression();
  const fd = openSync(file, "w", 0o600);
  try {
    // The compressor writes the file itself: the compressed bytes never cross a pipe into this
    // process while it shares the CPU with the compressor. Hashing them afterwards with sync
    // reads of the (cached) file is cheaper than receiving them. zstd and the packer are started
    // by castle-treeutil's helper when it runs (no fork of this process): neither the tree nor
    // the tar passes through this process then.
    const served = compression === "zstd"
      ? await startServedZstd(zstdCompressArgs(options.level), { path: file }, { program: [treeutilPath(), "pack", resolve(root)] })
      : undefined;
    const spawned = served ? undefined : startCompressor(compression, options.level, compression === "zstd" ? fd : undefined);
    // gzip runs in this process (zlib's thread pool) and its output is written here.
    const output = compression === "zstd" ? Promise.resolve() : pipeline((spawned as Codec).output, createWriteStream(file, { flags: "r+" }));
    const writing = spawned ? feedTar(root, spawned, options.signal) : Promise.resolve();
    const codec: Pick<Codec, "done" | "kill"> = served ?? (spawned as Codec);
    const onAbort = () => codec.kill();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    let finished = false;
    const compressed = Promise.all([writing, codec.done, output]).finally(() => {
      finished = true;
      options.signal?.removeEventListener("abort", onAbort);
    });
    // Hash the file as the compressor writes it: the main thread is mostly waiting meanwhile.
    const hashing = followFile(file, () => finished, options.onChunk);
    try {
      options.signal?.throwIfAborted();
      await compressed;
      options.signal?.throwIfAborted();
    } catch (error) {
      codec.kill();
      await hashing.catch(() => {});
      throw packFailed(root, options.signal?.aborted ? options.signal.reason : fromPackProgram(error));
    }
    return { ...(await hashing), compression };
  } finally {
    closeSync(fd);
  }
}

/**
 * Spawns `castle-treeutil pack root` with its tar flowing into the codec's input; resolves once
 * the packer exited 0 and its output was written, rejects with ProgramFailed (or the pipe's
 * error) otherwise, killing the codec.
 */
async function feedTar(root: string, codec: Codec, signal: AbortSignal | undefined): Promise<void> {
  const packer = spawn(treeutilPath(), ["pack", resolve(root)], { stdio: ["ignore", "pipe", "pipe"], ...(signal ? { signal } : {}) });
  let stderr = "";
  packer.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
  const exited = new Promise<RunResult>((done) => {
    packer.once("error", (error) => done(ranAs(-1, null, error.message)));
    packer.once("close", (code, sig) => done(ranAs(code ?? -1, sig, stderr)));
  });
  try {
    await pipeline(packer.stdout, codec.input);
  } catch (error) {
    packer.kill();
    codec.kill();
    const result = await exited;
    throw result.code === 0 ? error : new ProgramFailed(result);
  }
  const result = await exited;
  if (result.code !== 0) {
    codec.kill();
    throw new ProgramFailed(result);
  }
}

function ranAs(code: number, signal: NodeJS.Signals | null, stderr: string): RunResult {
  return { code, signal: signal ? osConstants.signals[signal] : 0, stdout: Buffer.alloc(0), stderr };
}

/** A refusal of `castle-treeutil pack` as a CastleError naming the entry; other failures as they are. */
function fromPackProgram(error: unknown): unknown {
  if (!(error instanceof ProgramFailed)) return error;
  const refused = /^castle-treeutil: refusing (fifo|device|reserved-name): (.*)$/s.exec(error.result.stderr.trim());
  if (error.result.code === 3 && refused) return unpackable(refused[2] as string, refused[1] as Unpackable);
  return error;
}

/**
 * Hashes a file while another process appends to it, until isDone() and nothing is left to read.
 * Yields to the event loop after every chunk so the writer side keeps going.
 */
async function followFile(file: string, isDone: () => boolean, onChunk?: (chunk: Buffer) => void): Promise<{ digest: BlobDigest; size: number }> {
  const hash = createHash("sha256");
  const buf = Buffer.allocUnsafe(CHUNK);
  const fd = openSync(file, "r");
  let size = 0;
  try {
    for (;;) {
      const done = isDone(); // Read before reading: bytes written before "done" are then seen.
      const n = readSync(fd, buf, 0, buf.length, size);
      if (n > 0) {
        const chunk = buf.subarray(0, n);
        hash.update(chunk);
        onChunk?.(chunk);
        size += n;
        await new Promise((resolve) => setImmediate(resolve));
      } else if (done) {
        break;
      } else {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
  } finally {
    closeSync(fd);
  }
  return { digest: hash.digest("hex"), size };
}

type Unpackable = "device" | "fifo" | "reserved-name";

function unpackable(path: string, why: Unpackable): CastleError {
  if (why === "reserved-name") {
    return new CastleError("CASTLE_ARCHIVE_UNSUPPORTED", `cannot pack ${path}: names starting with ${WHITEOUT_PREFIX} are reserved for whiteouts`, {
      data: { entry: path },
      hint: "rename the file in the layer",
    });
  }
  return new CastleError("CASTLE_ARCHIVE_UNSUPPORTED", `cannot pack ${path}: ${why === "fifo" ? "fifos" : "device nodes"} are not allowed in cached layers`, {
    data: { entry: path },
    hint: "remove it from the layer (create device nodes and fifos at run time instead)",
  });
}

/** A CastleError for any failure while packing (CastleErrors pass through). */
function packFailed(root: string, error: unknown): CastleError {
  if (isCastleError(error)) return error as CastleError;
  if ((error as Error)?.name === "AbortError") {
    return new CastleError("CASTLE_CANCELLED", `packing ${root} was cancelled`, { cause: error, data: { root } });
  }
  return new CastleError("CASTLE_ARCHIVE_IO", `cannot pack ${root}: ${(error as Error)?.message ?? String(error)}`, {
    cause: error, data: { root },
  });
}
