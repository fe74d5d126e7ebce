// Owns packing a layer tree into a deterministic, compressed tar: entries in walkTree order (the
// same walk the output digest uses), mtimes 0, owners 0/0 with no names, modes kept, whiteouts as
// OCI `.wh.<name>` files and opaque directories as `<dir>/.wh..wh..opq`. The same tree always
// gives the same bytes. With castle-treeutil's helper, the tar is written by `castle-treeutil
// pack` (native/pack.c, the same bytes; a test compares them) straight into zstd's input, and
// zstd writes the blob file: this process only hashes the blob. Otherwise writeTar below reads
// files with sync calls into large buffers for a compressor in another process (or zlib), so
// packing and compressing overlap like `tar | zstd`.

import { createHash } from "node:crypto";
import { closeSync, createWriteStream, openSync, readSync } from "node:fs";
import { pipeline } from "node:stream/promises";
import { resolve } from "node:path";
import { Readable, type Writable } from "node:stream";
import { CastleError, isCastleError } from "@castle/errors";
import type { BlobDigest, TreeEntry } from "../types";
import { openReadable } from "../store/digest-tree";
import { listOpaqueDirsAsync, treeutilPath } from "../store/treeutil";
import { walkEntries } from "../store/walk-tree";
import { type Codec, type Compression, ProgramFailed, defaultCompression, startCompressor, startServedZstd, zstdCompressArgs } from "./compress";
import { OPAQUE_MARKER, WHITEOUT_PREFIX } from "./safe-path";
import { BLOCK, encodeHeader, headerSpace, padding } from "./tar-header";

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

/** Size of the buffers handed to the compressor: big enough that per-write overhead vanishes. */
const CHUNK = 1 << 20;

/**
 * Packs the tree at root into a compressed tar stream. The stream ends only after the compressor
 * exited cleanly, and errors (CastleError for unpackable trees) otherwise; destroying it stops
 * packing.
 */
export function packTree(root: string, options: PackOptions = {}): Readable {
  const codec = startCompressor(options.compression ?? defaultCompression(), options.level);
  const writing = writeTar(root, codec.input, options.signal, scanOpaque(root));
  writing.catch(() => codec.kill());
  async function* chunks(): AsyncGenerator<Buffer> {
    try {
      try {
        for await (const chunk of codec.output as AsyncIterable<Buffer>) yield chunk;
        await writing;
        await codec.done;
      } catch (error) {
        throw packFailed(root, error);
      }
    } finally {
      codec.kill();
    }
  }
  return Readable.from(chunks(), { objectMode: false, highWaterMark: CHUNK });
}

/**
 * Packs the tree at root into file, hashing the compressed bytes on the way. onChunk sees every
 * compressed chunk in order (e.g. to compute S3 ETags; a chunk is valid only during the call). On failure the file may be partial: the
 * caller owns and removes it.
 */
export async function packTreeToFile(
  root: string, file: string, options: PackOptions & { onChunk?: (chunk: Buffer) => void } = {},
): Promise<PackedBlob> {
  const compression = options.compression ?? defaultCompression();
  const fd = openSync(file, "w", 0o600);
  try {
    // The compressor writes the file itself: the compressed bytes never cross a pipe into this
    // process while it shares the CPU with the compressor. Hashing them afterwards with sync
    // reads of the (cached) file is cheaper than receiving them. zstd and the tar writer are
    // started by castle-treeutil's helper when it runs (no fork of this process): neither the
    // tree nor the tar passes through this process then.
    const served = compression === "zstd"
      ? await startServedZstd(zstdCompressArgs(options.level), { path: file }, { program: [treeutilPath(), "pack", resolve(root)] })
      : undefined;
    const spawned = served ? undefined : startCompressor(compression, options.level, compression === "zstd" ? fd : undefined);
    // gzip runs in this process (zlib's thread pool) and its output is written here.
    const output = compression === "zstd" ? Promise.resolve() : pipeline((spawned as Codec).output, createWriteStream(file, { flags: "r+" }));
    const writing = spawned ? writeTar(root, spawned.input, options.signal, scanOpaque(root)) : Promise.resolve();
    const codec: Pick<Codec, "done" | "kill"> = served ?? (spawned as Codec);
    writing.catch(() => codec.kill());
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

/** A failure of `castle-treeutil pack` as the CastleError writeTar would have thrown. */
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

/** Starts listing root's opaque directories (awaited by writeTar at the first directory). */
function scanOpaque(root: string): Promise<ReadonlySet<string>> {
  const scan = listOpaqueDirsAsync(root);
  scan.catch(() => {}); // Awaited by writeTar (or moot when packing failed first).
  return scan;
}

/**
 * Writes the uncompressed tar of root to sink (ends it), honouring back-pressure. Entries are
 * written as the walk finds them, so the compressor starts at once; opaqueDirs (the scan of
 * root's opaque directories) is awaited only when the first directory comes. native/pack.c
 * writes the same bytes; change both together.
 */
export async function writeTar(
  root: string, sink: Writable, signal?: AbortSignal, opaqueDirs?: Promise<ReadonlySet<string>>,
): Promise<void> {
  let opaque: ReadonlySet<string> | undefined;
  const out = new TarStream(sink, signal);
  for (const entry of walkEntries(root)) {
    checkPackable(entry);
    switch (entry.kind) {
      case "dir":
        opaque ??= await (opaqueDirs ?? scanOpaque(root));
        entry.opaque = opaque.has(entry.path);
        await out.header(`${entry.path}/`, entry.mode, 0, "dir");
        if (entry.opaque) await out.header(`${entry.path}/${OPAQUE_MARKER}`, 0, 0, "file");
        break;
      case "symlink":
        await out.header(entry.path, 0o777, 0, "symlink", entry.target);
        break;
      case "whiteout":
        await out.header(whiteoutName(entry.path), 0, 0, "file");
        break;
      case "file":
        await out.header(entry.path, entry.mode, entry.size, "file");
        await out.readBody(entry);
        await out.zeros(padding(entry.size));
        break;
      default:
        break;
    }
  }
  await out.zeros(2 * BLOCK);
  await out.end();
}

/**
 * The tar stream in 1 MiB buffers handed to the sink. Buffers come back once the sink has consumed
 * them: allocating a fresh 1 MiB per chunk costs more in garbage collection than reading the files.
 */
class TarStream {
  private readonly free: Buffer[] = [];
  private buf: Buffer = Buffer.allocUnsafe(CHUNK);
  private pos = 0;

  constructor(private readonly sink: Writable, private readonly signal: AbortSignal | undefined) {}

  async header(name: string, mode: number, size: number, type: "file" | "dir" | "symlink", linkname?: string): Promise<void> {
    await this.room(headerSpace(name, linkname));
    this.pos += encodeHeader(this.buf, this.pos, { name, mode, size, type, linkname });
  }

  async zeros(n: number): Promise<void> {
    if (n === 0) return;
    await this.room(n);
    this.buf.fill(0, this.pos, this.pos + n);
    this.pos += n;
  }

  /** Reads a file's body into the stream here. */
  async readBody(entry: Extract<TreeEntry, { kind: "file" }>): Promise<void> {
    if (entry.size === 0) return;
    const fd = openReadable(entry.absPath, entry.mode);
    try {
      let left = entry.size;
      while (left > 0) {
        await this.room(1);
        const n = readSync(fd, this.buf, this.pos, Math.min(this.buf.length - this.pos, left), null);
        if (n === 0) throw changed(entry.path);
        this.pos += n;
        left -= n;
      }
    } finally {
      closeSync(fd);
    }
  }

  async end(): Promise<void> {
    await this.flush();
    this.sink.end();
  }

  /** Makes room for n more bytes at pos. */
  private async room(n: number): Promise<void> {
    if (this.pos + n > this.buf.length) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pos === 0) return;
    this.signal?.throwIfAborted();
    const full = this.buf;
    const chunk = full.subarray(0, this.pos);
    this.buf = this.free.pop() ?? Buffer.allocUnsafe(CHUNK);
    this.pos = 0;
    if (this.sink.destroyed) throw new Error("the compressor stopped early");
    if (!this.sink.write(chunk, () => this.free.push(full))) await drained(this.sink);
  }
}

/** Entries an OCI-style layer cannot carry are refused before anything is uploaded. */
function checkPackable(entry: TreeEntry): void {
  const base = entry.path.slice(entry.path.lastIndexOf("/") + 1);
  if (entry.kind === "device" || entry.kind === "fifo") throw unpackable(entry.path, entry.kind);
  if (base.startsWith(WHITEOUT_PREFIX)) throw unpackable(entry.path, "reserved-name");
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

function whiteoutName(path: string): string {
  const slash = path.lastIndexOf("/");
  return `${path.slice(0, slash + 1)}${WHITEOUT_PREFIX}${path.slice(slash + 1)}`;
}

async function drained(sink: Writable): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const done = (error?: Error) => {
      sink.off("drain", onDrain);
      sink.off("close", onClose);
      sink.off("error", done);
      if (error) reject(error);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new Error("the compressor stopped early"));
    sink.once("drain", onDrain);
    sink.once("close", onClose);
    sink.once("error", done);
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

function changed(path: string): CastleError {
  return new CastleError("CASTLE_ARCHIVE_IO", `${path} changed while it was being packed`, { data: { entry: path } });
}
