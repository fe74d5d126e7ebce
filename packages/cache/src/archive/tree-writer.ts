// Owns writing archive entries into an empty directory without ever writing outside it. Every
// entry's parent must be a directory this writer created from the same archive, so no path can
// pass through a symlink (in the tree or out of it), and names were already checked to be
// canonical and relative (safe-path.ts). Files are created with O_EXCL | O_NOFOLLOW, so nothing
// existing is overwritten or followed. Hardlinks, devices and fifos are refused: Castle's packer
// never writes them (walkTree yields files), and whiteouts travel as OCI `.wh.` entries.

import { chmodSync, closeSync, constants, fchmodSync, mkdirSync, openSync, symlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { CastleError } from "@castle/errors";
import type { OverlayMark } from "../store/treeutil";
import { applyOverlayMarks } from "../store/treeutil";
import { MAX_PATH_BYTES, checkEntryPath, corrupt, overlayMeaning, parentOf, unsafe } from "./safe-path";
import type { TarHeader } from "./tar-header";
import type { BodySink } from "./tar-reader";

type Known = "dir" | "file" | "symlink" | "whiteout";

const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

export interface WriterLimits {
  /** Most entries an archive may hold. Default 10 million. */
  maxEntries?: number;
  /** Most bytes of file contents an archive may unpack to. Default 1 TiB. */
  maxTotalBytes?: number;
}

export class TreeWriter {
  /** Every path written so far (and every whiteout target), by what it is. "" is the root. */
  private readonly known = new Map<string, Known>([["", "dir"]]);
  private readonly dirs: Array<[string, number]> = [];
  private readonly marks: OverlayMark[] = [];
  private readonly umask = process.umask();
  private readonly maxEntries: number;
  private readonly maxTotal: number;
  private openFd = -1;
  entries = 0;
  bytes = 0;

  constructor(private readonly root: string, limits: WriterLimits = {}) {
    this.maxEntries = limits.maxEntries ?? 10_000_000;
    this.maxTotal = limits.maxTotalBytes ?? 2 ** 40;
  }

  /** Writes one entry (a file's body arrives through the returned sink). */
  entry(header: TarHeader): BodySink | undefined {
    if (header.type === "other") throw refusedType(header);
    const path = checkEntryPath(header.name);
    if (++this.entries > this.maxEntries) throw unsafe(header.name, `is past the limit of ${this.maxEntries} entries`);
    const meaning = overlayMeaning(path);
    if (meaning.kind !== "plain" && (header.type !== "file" || header.size !== 0)) {
      throw corrupt(header.name, "is a whiteout but not an empty file");
    }
    this.checkParent(header.name, parentOf(path));
    if (meaning.kind === "whiteout") {
      this.claim(header.name, meaning.target, "whiteout");
      this.marks.push({ op: "w", path: meaning.target });
      return undefined;
    }
    if (meaning.kind === "opaque") {
      if (meaning.dir === "") throw corrupt(header.name, "marks the root itself opaque");
      this.claim(header.name, path, "whiteout");
      this.marks.push({ op: "o", path: meaning.dir });
      return undefined;
    }
    const abs = join(this.root, path);
    switch (header.type) {
      case "dir":
        this.claim(header.name, path, "dir");
        this.io(path, () => mkdirSync(abs, 0o700));
        this.dirs.push([abs, header.mode & 0o7777]);
        return undefined;
      case "symlink":
        if (header.linkname === "" || header.linkname.includes("\0") || Buffer.byteLength(header.linkname) > MAX_PATH_BYTES) {
          throw corrupt(header.name, "is a symlink with an invalid target");
        }
        this.claim(header.name, path, "symlink");
        this.io(path, () => symlinkSync(header.linkname, abs));
        return undefined;
      default:
        this.claim(header.name, path, "file");
        if ((this.bytes += header.size) > this.maxTotal) throw unsafe(header.name, `takes the archive past ${this.maxTotal} bytes`);
        return this.createFile(path, abs, header.mode & 0o7777);
    }
  }

  /** After the last entry: makes whiteouts and opaque marks, then gives directories their modes. */
  finish(): void {
    if (this.marks.length > 0) applyOverlayMarks(this.root, this.marks);
    for (let i = this.dirs.length - 1; i >= 0; i--) {
      const [abs, mode] = this.dirs[i] as [string, number];
      this.io(abs, () => chmodSync(abs, mode));
    }
  }

  private checkParent(name: string, parent: string): void {
    const kind = this.known.get(parent);
    if (kind === "dir") return;
    if (kind === undefined) throw corrupt(name, `comes before its parent directory ${JSON.stringify(parent)}`);
    if (kind === "symlink") throw unsafe(name, `would be written through the symlink ${JSON.stringify(parent)}`);
    throw corrupt(name, `is inside ${JSON.stringify(parent)}, which is not a directory`);
  }

  private claim(name: string, path: string, kind: Known): void {
    if (this.known.has(path)) throw unsafe(name, `is a second entry for ${JSON.stringify(path)}`);
    this.known.set(path, kind);
  }

  private createFile(path: string, abs: string, mode: number): BodySink {
    const fd = this.io(path, () => openSync(abs, CREATE_FLAGS, mode & 0o777));
    this.openFd = fd;
    // open() applies the umask and drops set-id bits; fix the mode after the body is written (a
    // write by a non-root owner would clear set-id bits again).
    const fixMode = (mode & 0o7000) !== 0 || (mode & this.umask) !== 0;
    return {
      write: (chunk, start, end) => {
        let at = start;
        while (at < end) at += this.io(path, () => writeSync(fd, chunk, at, end - at));
      },
      end: () => {
        try {
          if (fixMode) this.io(path, () => fchmodSync(fd, mode));
        } finally {
          this.openFd = -1;
          closeSync(fd);
        }
      },
    };
  }

  /** Closes a file left open by an archive that stopped mid-body. */
  close(): void {
    if (this.openFd < 0) return;
    closeSync(this.openFd);
    this.openFd = -1;
  }

  private io<T>(path: string, fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      throw new CastleError("CASTLE_ARCHIVE_IO", `cannot write ${path} while unpacking: ${(error as Error).message}`, {
        cause: error, data: { entry: path },
      });
    }
  }
}

function refusedType(header: TarHeader): CastleError {
  switch (header.typeflag) {
    case "1":
      return unsafe(header.name, `is a hardlink (to ${JSON.stringify(header.linkname)}); Castle archives never contain hardlinks`);
    case "3":
    case "4":
      return unsafe(header.name, "is a device node");
    case "6":
      return unsafe(header.name, "is a fifo");
    default:
      return corrupt(header.name, `has an entry type Castle does not write (${JSON.stringify(header.typeflag)})`);
  }
}
