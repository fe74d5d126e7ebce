// Owns compressing and decompressing archive streams. zstd runs as the system `zstd` program in
// its own process, so compression overlaps packing exactly as `tar | zstd` does and costs the main
// thread nothing; where no `zstd` is installed Castle falls back to gzip from node:zlib (9x slower
// to pack, see README). Unpacking recognises either by its magic bytes. When castle-treeutil's
// helper runs (store/treeutil-serve.ts), zstd is started by it instead of forked from Node, and
// talks to Castle (or to the program that feeds it) through fifos with 1 MiB buffers: see
// startServedZstd.

import { spawn } from "node:child_process";
import { constants as osConstants } from "node:os";
import { accessSync, closeSync, constants, openSync, rmSync } from "node:fs";
import { Socket } from "node:net";
import { delimiter, join, resolve } from "node:path";
import { PassThrough, type Readable, type Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import { CastleError } from "@castle/errors";
import { type RunResult, type RunningProgram, treeutilServer } from "../store/treeutil-serve";

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
      found = resolve(candidate);
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
  return zstdCodec(zstdCompressArgs(level), outFd);
}

/** -T0: one compression thread per core, beside zstd's reader (1.6 s → 1.3 s for the bench tree
 * on 2 busy cores). zstd's output is the same for any -T≥1 (tested), so blobs stay deterministic
 * across machines whatever their core count, for versions that share the format. */
export function zstdCompressArgs(level?: number): string[] {
  return [`-${level ?? DEFAULT_ZSTD_LEVEL}`, "-T0", "-q", "-c"];
}

/** zstd -d keeps its default 128 MiB window limit: a hostile frame cannot demand more memory. */
export const ZSTD_DECOMPRESS_ARGS = ["-d", "-q", "-c"];

export function startDecompressor(kind: Compression): Codec {
  if (kind === "gzip") return zlibCodec(createGunzip());
  return zstdCodec(ZSTD_DECOMPRESS_ARGS);
}

/** zstd started by castle-treeutil's helper: its input is input or a program's output; its
 * output is outputFd or a file. */
export interface ServedZstd {
  /** zstd's input, when it was started with input "socket". */
  readonly input: Writable | undefined;
  /** The read end of zstd's output fifo (blocking reads; see unpack-worker.ts), when output was "fifo". */
  readonly outputFd: number | undefined;
  /** Resolves when zstd (and the input program, if any) exited 0; rejects otherwise, with a
   * ProgramFailed when the input program failed. */
  readonly done: Promise<void>;
  kill(): void;
  /** Closes outputFd (once nothing reads it any more). */
  closeOutput(): void;
}

/** The input program of startServedZstd exited with an error (zstd was killed then). */
export class ProgramFailed extends Error {
  constructor(readonly result: RunResult) {
    super(result.stderr.trim() || (result.signal ? `killed by signal ${result.signal}` : `exit ${result.code}`));
  }
}

/**
 * Starts zstd with args through castle-treeutil's helper, reading from a fifo and writing to a
 * fifo ("fifo") or to an existing file. The input fifo is written by this process ("socket"), or
 * by a program the helper starts with its stdout there ({ program: argv }, e.g. castle-treeutil
 * pack), so the input never passes through this process. Resolves undefined when the helper is
 * not available, so the caller spawns zstd itself. Each fifo is opened here read-write first, so
 * that no open on either side ever blocks, and unlinked as soon as the helper and zstd hold it.
 */
export async function startServedZstd(
  args: string[], output: "fifo" | { path: string }, input: "socket" | { program: string[] } = "socket",
): Promise<ServedZstd | undefined> {
  const program = findZstd();
  if (!program) throw noZstd();
  const server = await treeutilServer();
  if (!server) return undefined;
  const keep: number[] = [];
  const paths: string[] = [];
  let writeFd = -1;
  let readFd = -1;
  const running: RunningProgram[] = [];
  try {
    const inPath = await server.fifo();
    paths.push(inPath);
    keep.push(openSync(inPath, constants.O_RDWR));
    let stdout: { path: string } = typeof output === "string" ? { path: "" } : output;
    if (output === "fifo") {
      const outPath = await server.fifo();
      paths.push(outPath);
      keep.push(openSync(outPath, constants.O_RDWR));
      readFd = openSync(outPath, constants.O_RDONLY);
      stdout = { path: outPath };
    }
    const zstd = await server.run({ argv: [program, ...args], stdin: { path: inPath }, stdout });
    running.push(zstd);
    const exited = zstd.done.then((result) => {
      if (result.code !== 0) {
        const how = result.signal ? `was killed by signal ${result.signal}` : `exited with ${result.code}`;
        throw new Error(`zstd ${how}: ${result.stderr.trim() || "no message"}`);
      }
    });
    exited.catch(() => {}); // Observed through done.
    let produced: Promise<void> = Promise.resolve();
    if (input === "socket") {
      writeFd = openSync(inPath, constants.O_WRONLY);
    } else {
      const producer = await server.run({ argv: input.program, stdout: { path: inPath } });
      running.push(producer);
      produced = producer.done.then(async (result) => {
        if (result.code === 0) return;
        // Killed writing to a zstd that stopped reading: zstd's own complaint says why.
        if (result.signal === osConstants.signals.SIGPIPE) await exited;
        throw new ProgramFailed(result);
      });
    }
    // zstd (and the producer) hold the fifos now: from here on, their exits end our reads and writes.
    for (const fd of keep.splice(0)) closeSync(fd);
    for (const path of paths.splice(0)) rmSync(path, { force: true });
    let socket: Socket | undefined;
    if (writeFd >= 0) {
      socket = new Socket({ fd: writeFd, readable: false, writable: true });
      writeFd = -1;
      socket.on("error", () => {}); // A dead reader makes writes fail with EPIPE; `done` says why.
    }
    // If the producer fails, zstd still ends cleanly on a cut stream: the producer's error wins.
    const done = Promise.all([produced.catch((error: unknown) => {
      zstd.kill();
      throw error;
    }), exited]).then(() => {});
    done.catch(() => {}); // Observed by the caller.
    let outputFd: number | undefined = readFd >= 0 ? readFd : undefined;
    readFd = -1;
    return {
      input: socket,
      get outputFd() {
        return outputFd;
      },
      done,
      kill: () => {
        socket?.destroy();
        for (const started of running) started.kill();
      },
      closeOutput: () => {
        if (outputFd !== undefined) closeSync(outputFd);
        outputFd = undefined;
      },
    };
  } catch {
    // The helper could not do it (no room for a fifo, helper gone): spawn from Node instead.
    for (const started of running) started.kill();
    for (const fd of [...keep, writeFd, readFd]) if (fd >= 0) closeSync(fd);
    for (const path of paths) rmSync(path, { force: true });
    return undefined;
  }
}

function noZstd(): CastleError {
  return new CastleError("CASTLE_ARCHIVE_NO_ZSTD", "the zstd program is not installed", {
    hint: "install it (`apt-get install zstd`), or set CASTLE_ARCHIVE_COMPRESSION=gzip to pack with gzip",
  });
}

function zstdCodec(args: string[], outFd?: number): Codec {
  const program = findZstd();
  if (!program) throw noZstd();
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
