// Owns compressing and decompressing archive streams. zstd runs as the system `zstd` program in
// its own process, so compression overlaps packing exactly as `tar | zstd` does and costs the main
// thread nothing; where no `zstd` is installed Castle falls back to gzip from node:zlib (9x slower
// to pack, see README). Unpacking recognises either by its magic bytes.

import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { PassThrough, type Readable, type Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import { CastleError } from "@castle/errors";

export type Compression = "zstd" | "gzip";

/** zstd's level for layers: -3 packs ~9x faster than gzip -6 at a smaller size. */
export const DEFAULT_ZSTD_LEVEL = 3;

/** A running (de)compressor: write to input, read from output; done settles when it has exited. */
export interface Codec {
  readonly input: Writable;
  readonly output: Readable;
  /** Resolves when the codec finished cleanly; rejects with its complaint otherwise. */
  readonly done: Promise<void>;
  /** Stops the codec at once (after an error elsewhere). */
  kill(): void;
}

let zstdFound: string | null | undefined;

/** The zstd program ($CASTLE_ZSTD, else `zstd` on PATH), or undefined when there is none. */
export function findZstd(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (zstdFound !== undefined && env === process.env) return zstdFound ?? undefined;
  const candidates = env.CASTLE_ZSTD ? [env.CASTLE_ZSTD] : (env.PATH ?? "/usr/bin:/bin").split(delimiter).map((dir) => join(dir, "zstd"));
  let found: string | null = null;
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      found = candidate;
      break;
    } catch {
      // Not here.
    }
  }
  if (env === process.env) zstdFound = found;
  return found ?? undefined;
}

/** zstd when it is installed, else gzip; $CASTLE_ARCHIVE_COMPRESSION=gzip|zstd forces one. */
export function defaultCompression(env: NodeJS.ProcessEnv = process.env): Compression {
  const forced = env.CASTLE_ARCHIVE_COMPRESSION;
  if (forced === "zstd" || forced === "gzip") return forced;
  return findZstd(env) ? "zstd" : "gzip";
}

/** The compression of a blob from its first bytes, or undefined when it is neither. */
export function sniffCompression(head: Uint8Array): Compression | undefined {
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return "zstd";
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  return undefined;
}

/**
 * Starts a compressor. With outFd (zstd only), zstd writes straight into that file descriptor
 * (its output never passes through this process) and `output` is an empty stream.
 */
export function startCompressor(kind: Compression, level?: number, outFd?: number): Codec {
  if (kind === "gzip") {
    if (outFd !== undefined) throw new Error("gzip output goes through `output`, not a file descriptor");
    return zlibCodec(createGzip({ level: level ?? 6, memLevel: 9 }));
  }
  // -T1: one worker thread beside the reader, so zstd itself overlaps I/O and compression; the
  // output is the same for any -T≥1, so blobs stay deterministic across machines and versions
  // that share the format.
  return zstdCodec([`-${level ?? DEFAULT_ZSTD_LEVEL}`, "-T1", "-q", "-c"], outFd);
}

export function startDecompressor(kind: Compression): Codec {
  if (kind === "gzip") return zlibCodec(createGunzip());
  // zstd -d keeps its default 128 MiB window limit: a hostile frame cannot demand more memory.
  return zstdCodec(["-d", "-q", "-c"]);
}

function zstdCodec(args: string[], outFd?: number): Codec {
  const program = findZstd();
  if (!program) {
    throw new CastleError("CASTLE_ARCHIVE_NO_ZSTD", "the zstd program is not installed", {
      hint: "install it (`apt-get install zstd`), or set CASTLE_ARCHIVE_COMPRESSION=gzip to pack with gzip",
    });
  }
  const child = spawn(program, args, { stdio: ["pipe", outFd ?? "pipe", "pipe"] });
  const stdin = child.stdin as Writable;
  const stderrStream = child.stderr as Readable;
  let stderr = "";
  stderrStream.setEncoding("utf8");
  stderrStream.on("data", (text: string) => {
    if (stderr.length < 4000) stderr += text;
  });
  // A dead child makes writes fail with EPIPE; `done` reports why it died instead.
  stdin.on("error", () => {});
  const output = child.stdout ?? new PassThrough().end();
  output.on("error", () => {});
  const done = new Promise<void>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`zstd ${signal ? `was killed by ${signal}` : `exited with ${code}`}: ${stderr.trim() || "no message"}`));
    });
  });
  done.catch(() => {}); // Observed by the caller; never an unhandled rejection here.
  return {
    input: stdin,
    output,
    done,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}

function zlibCodec(stream: ReturnType<typeof createGzip>): Codec {
  const done = finished(stream);
  done.catch(() => {});
  return { input: stream, output: stream, done, kill: () => stream.destroy() };
}
