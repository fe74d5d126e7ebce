// Owns packing a layer tree into a deterministic, compressed tar: entries in walkTree order (the
// same walk the output digest uses), mtimes 0, owners 0/0 with no names, modes kept, whiteouts as
// OCI `.wh.<name>` files and opaque directories as `<dir>/.wh..wh..opq`. The same tree always
// gives the same bytes. Files are read with sync calls straight into large output buffers, and
// compression runs in another process, so packing and compressing overlap like `tar | zstd`.

import { createHash } from "node:crypto";
import { closeSync, createWriteStream, openSync, readSync } from "node:fs";
import { pipeline } from "node:stream/promises";
import { Readable, type Writable } from "node:stream";
import { CastleError, isCastleError } from "@castle/errors";
import type { BlobDigest, TreeEntry } from "../types";
import { openReadable } from "../store/digest-tree";
import { listOpaqueDirsAsync } from "../store/treeutil";
import { walkEntries } from "../store/walk-tree";
import { type Codec, type Compression, defaultCompression, startCompressor, startServedZstd, zstdCompressArgs } from "./compress";
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
  // The opaque-directory scan runs in castle-treeutil's helper while zstd starts.
  const opaque = scanOpaque(root);
  const fd = openSync(file, "w", 0o600);
  try {
    // The compressor writes the file itself: the compressed bytes never cross a pipe into this
    // process while it shares the CPU with the compressor. Hashing them afterwards with sync
    // reads of the (cached) file is cheaper than receiving them. zstd is started by
    // castle-treeutil's helper when it runs (no fork of this process; a 1 MiB input fifo).
    // The helper also splices file bodies into zstd's input: they never pass through this process.
    const served = compression === "zstd" ? await startServedZstd(zstdCompressArgs(options.level), { path: file }, "splice") : undefined;
    const spawned = served ? undefined : startCompressor(compression, options.level, compression === "zstd" ? fd : undefined);
    const codec: Pick<Codec, "input" | "done" | "kill"> = served ?? (spawned as Codec);
    // gzip runs in this process (zlib's thread pool) and its output is written here.
    const output = compression === "zstd" ? Promise.resolve() : pipeline((spawned as Codec).output, createWriteStream(file, { flags: "r+" }));
    const writing = writeTar(root, codec.input, options.signal, opaque, served !== undefined);
    writing.catch(() => codec.kill());
    let finished = false;
    const compressed = Promise.all([writing, codec.done, output]).finally(() => {
      finished = true;
    });
    // Hash the file as the compressor writes it: the main thread is mostly waiting meanwhile.
    const hashing = followFile(file, () => finished, options.onChunk);
    try {
      await compressed;
    } catch (error) {
      codec.kill();
      await hashing.catch(() => {});
      throw packFailed(root, error);
    }
    return { ...(await hashing), compression };
  } finally {
    closeSync(fd);
  }
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
 * root's opaque directories) is awaited only when the first directory comes. With splice, sink
 * is castle-treeutil's splice control stream (see TarStream) rather than the tar itself.
 */
export async function writeTar(
  root: string, sink: Writable, signal?: AbortSignal, opaqueDirs?: Promise<ReadonlySet<string>>, splice = false,
): Promise<void> {
  let opaque: ReadonlySet<string> | undefined;
  const out = new TarStream(sink, signal, splice);
  const asRoot = process.getuid?.() === 0;
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
        // The helper opens files as they are; one its owner may not read goes through here.
        if (splice && entry.size > 0 && (asRoot || (entry.mode & 0o400) !== 0)) await out.spliceBody(entry.absPath, entry.size);
        else await out.readBody(entry);
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
 * The tar stream in 1 MiB buffers handed to the sink. Plain: the tar bytes. Splice: records for
 * castle-treeutil's splice — "D" <u32 length> <tar bytes> and "F" <u32 length> <path> <u64 size>,
 * for which the helper copies the file's body into zstd's input with splice(2), so file contents
 * never pass through this process. Buffers come back once the sink has consumed them:
 * allocating a fresh 1 MiB per chunk costs more in garbage collection than reading the files.
 */
class TarStream {
  private readonly free: Buffer[] = [];
  private buf: Buffer = Buffer.allocUnsafe(CHUNK);
  private pos = 0;
  /** Splice: where the open "D" record's head is, or -1. */
  private dataAt = -1;

  constructor(private readonly sink: Writable, private readonly signal: AbortSignal | undefined, private readonly splice: boolean) {}

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

  /** Splice: has the helper copy the body of the file at absPath (size bytes). */
  async spliceBody(absPath: string, size: number): Promise<void> {
    const path = Buffer.from(absPath);
    this.closeData();
    if (this.pos + 13 + path.length > this.buf.length) await this.flush();
    const at = this.pos;
    this.buf[at] = 0x46; // F
    this.buf.writeUInt32LE(path.length, at + 1);
    path.copy(this.buf, at + 5);
    this.buf.writeUInt32LE(size % 2 ** 32, at + 5 + path.length);
    this.buf.writeUInt32LE(Math.floor(size / 2 ** 32), at + 9 + path.length);
    this.pos += 13 + path.length;
  }

  async end(): Promise<void> {
    await this.flush();
    this.sink.end();
  }

  /** Makes room for n more tar bytes at pos (in an open "D" record when splicing). */
  private async room(n: number): Promise<void> {
    const head = this.splice && this.dataAt < 0 ? 5 : 0;
    if (this.pos + head + n > this.buf.length) await this.flush();
    if (this.splice && this.dataAt < 0) {
      this.dataAt = this.pos;
      this.pos += 5;
    }
  }

  private closeData(): void {
    if (this.dataAt < 0) return;
    this.buf[this.dataAt] = 0x44; // D
    this.buf.writeUInt32LE(this.pos - this.dataAt - 5, this.dataAt + 1);
    this.dataAt = -1;
  }

  private async flush(): Promise<void> {
    this.closeData();
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
  if (entry.kind === "device" || entry.kind === "fifo") {
    throw new CastleError("CASTLE_ARCHIVE_UNSUPPORTED", `cannot pack ${entry.path}: ${entry.kind === "fifo" ? "fifos" : "device nodes"} are not allowed in cached layers`, {
      data: { entry: entry.path },
      hint: "remove it from the layer (create device nodes and fifos at run time instead)",
    });
  }
  if (base.startsWith(WHITEOUT_PREFIX)) {
    throw new CastleError("CASTLE_ARCHIVE_UNSUPPORTED", `cannot pack ${entry.path}: names starting with ${WHITEOUT_PREFIX} are reserved for whiteouts`, {
      data: { entry: entry.path },
      hint: "rename the file in the layer",
    });
  }
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
    return new CastleError("CASTLE_ARCHIVE_ABORTED", `packing ${root} was cancelled`, { cause: error, data: { root } });
  }
  return new CastleError("CASTLE_ARCHIVE_IO", `cannot pack ${root}: ${(error as Error)?.message ?? String(error)}`, {
    cause: error, data: { root },
  });
}

function changed(path: string): CastleError {
  return new CastleError("CASTLE_ARCHIVE_IO", `${path} changed while it was being packed`, { data: { entry: path } });
}
