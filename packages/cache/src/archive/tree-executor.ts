// Owns carrying out the filesystem side of an unpack once tree-writer.ts has checked an entry:
// making directories and symlinks, creating files, writing their bodies, setting their modes,
// and hashing contents and digest records, on the calling thread (the main thread, or the unpack
// worker's: unpack-thread.ts) as the writer asks. An executor never decides
// anything: every path it gets was made safe by the writer (created under root, O_EXCL |
// O_NOFOLLOW, parents it made itself). A failure is reported with the entry's path.

import { createHash, type Hash } from "node:crypto";
import { closeSync, fchmodSync, mkdirSync, openSync, symlinkSync, writeSync } from "node:fs";
import { CastleError } from "@castle/errors";
import { CREATE_FLAGS } from "./unpack-protocol";


export interface TreeExecutor {
  mkdir(path: string, abs: string): void;
  /** Creates a file; its body follows through write(), then closeFile(). */
  createFile(path: string, abs: string, mode: number): void;
  write(chunk: Buffer, start: number, end: number): void;
  /** fix: set mode after the body (umask, set-id bits). record: the file's digest record without
   * its content digest and newline, when the tree is being digested. */
  closeFile(mode: number, fix: boolean, record: string | undefined): void;
  symlink(path: string, target: string, abs: string): void;
  /** A digest record (dirs, symlinks, whiteouts), in entry order. */
  record(text: string): void;
  /** Waits for every operation; resolves with the sha256 of all records (or undefined without
   * any), rejects with the first failure. */
  finish(): Promise<string | undefined>;
  /** Stops after a failure elsewhere: closes what is open; resolves once nothing runs any more. */
  abort(): Promise<void>;
}

export function ioError(path: string, message: string, cause?: unknown): CastleError {
  return new CastleError("CASTLE_ARCHIVE_IO", `cannot write ${path} while unpacking: ${message}`, { cause, data: { entry: path } });
}

/** Everything on the calling thread, as the operations arrive. */
export class DirectExecutor implements TreeExecutor {
  private fd = -1;
  private path = "";
  private content: Hash | undefined;
  private tree: Hash | undefined;

  constructor(private readonly digest: boolean) {}

  mkdir(path: string, abs: string): void {
    this.io(path, () => mkdirSync(abs, 0o700));
  }

  createFile(path: string, abs: string, mode: number): void {
    this.fd = this.io(path, () => openSync(abs, CREATE_FLAGS, mode & 0o777));
    this.path = path;
    this.content = this.digest ? createHash("sha256") : undefined;
  }

  write(chunk: Buffer, start: number, end: number): void {
    this.content?.update(start === 0 && end === chunk.length ? chunk : chunk.subarray(start, end));
    let at = start;
    while (at < end) at += this.io(this.path, () => writeSync(this.fd, chunk, at, end - at));
  }

  closeFile(mode: number, fix: boolean, record: string | undefined): void {
    const fd = this.fd;
    this.fd = -1;
    try {
      if (fix) this.io(this.path, () => fchmodSync(fd, mode));
    } finally {
      closeSync(fd);
    }
    if (record !== undefined && this.content) this.record(`${record}${this.content.digest("hex")}\n`);
  }

  symlink(path: string, target: string, abs: string): void {
    this.io(path, () => symlinkSync(target, abs));
  }

  record(text: string): void {
    (this.tree ??= createHash("sha256")).update(text);
  }

  async finish(): Promise<string | undefined> {
    return this.tree?.digest("hex");
  }

  async abort(): Promise<void> {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  private io<T>(path: string, fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      throw ioError(path, (error as Error).message, error);
    }
  }
}
