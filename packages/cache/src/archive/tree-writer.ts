// Owns writing archive entries into an empty directory without ever writing outside it. Every
// entry's parent must be a directory this writer created from the same archive, so no path can
// pass through a symlink (in the tree or out of it), and names were already checked to be
// canonical and relative (safe-path.ts). Files are created with O_EXCL | O_NOFOLLOW, so nothing
// existing is overwritten or followed. Hardlinks, devices and fifos are refused: Castle's packer
// never writes them (walkTree yields files), and whiteouts travel as OCI `.wh.` entries.

import { chmodSync, lstatSync } from "node:fs";
import { join } from "node:path";
import { CastleError } from "@castle/errors";
import type { OverlayMark } from "../store/treeutil";
import { applyOverlayMarksAsync } from "../store/treeutil";
import { MAX_PATH_BYTES, checkEntryPath, corrupt, overlayMeaning, parentOf, unsafe } from "./safe-path";
import type { TarHeader } from "./tar-header";
import type { BodySink } from "./tar-reader";
import { DirectExecutor, ioError, type TreeExecutor } from "./tree-executor";
import { UnpackDigest } from "./unpack-digest";

type Known = "dir" | "file" | "symlink" | "whiteout";

const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

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
  private readonly executor: TreeExecutor;
  private readonly applyMarks: (root: string, marks: OverlayMark[]) => Promise<void>;
  /** Checks the order and renders the records of the output digest (option digest). */
  private readonly digest: UnpackDigest | undefined;
  entries = 0;
  bytes = 0;

  /** applyMarks: how whiteouts and opaque marks are made at the end (default: castle-treeutil's
   * helper; the unpack worker asks the main thread, where the helper runs). */
  constructor(
    private readonly root: string,
    limits: WriterLimits = {},
    options: { digest?: boolean; applyMarks?: (root: string, marks: OverlayMark[]) => Promise<void> } = {},
  ) {
    this.maxEntries = limits.maxEntries ?? 10_000_000;
    this.maxTotal = limits.maxTotalBytes ?? 2 ** 40;
    this.executor = new DirectExecutor(options.digest === true);
    this.applyMarks = options.applyMarks ?? applyOverlayMarksAsync;
    if (options.digest) this.digest = new UnpackDigest((record) => this.executor.record(record));
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
      this.digest?.whiteout(meaning.target);
      return undefined;
    }
    if (meaning.kind === "opaque") {
      if (meaning.dir === "") throw corrupt(header.name, "marks the root itself opaque");
      this.claim(header.name, path, "whiteout");
      this.marks.push({ op: "o", path: meaning.dir });
      this.digest?.opaque(meaning.dir);
      return undefined;
    }
    const abs = join(this.root, path);
    switch (header.type) {
      case "dir":
        this.claim(header.name, path, "dir");
        this.executor.mkdir(path, abs);
        this.dirs.push([abs, header.mode & 0o7777]);
        this.digest?.dir(path, header.mode & 0o7777);
        return undefined;
      case "symlink":
        if (header.linkname === "" || header.linkname.includes("\0") || Buffer.byteLength(header.linkname) > MAX_PATH_BYTES) {
          throw corrupt(header.name, "is a symlink with an invalid target");
        }
        this.claim(header.name, path, "symlink");
        this.executor.symlink(path, header.linkname, abs);
        this.digest?.symlink(path, header.linkname);
        return undefined;
      default:
        this.claim(header.name, path, "file");
        if ((this.bytes += header.size) > this.maxTotal) throw unsafe(header.name, `takes the archive past ${this.maxTotal} bytes`);
        return this.createFile(path, abs, header.mode & 0o7777, header.size);
    }
  }

  /**
   * After the last entry: waits for the executor, makes whiteouts and opaque marks, then gives
   * directories their modes. With option digest, resolves with the tree's output digest, or
   * undefined when the archive was not in Castle's order or the kernel did not keep a set-id
   * mode (checked on disk), so that only digesting the tree can tell.
   */
  async finish(): Promise<string | undefined> {
    const canonical = this.digest?.finish();
    const digest = await this.executor.finish();
    if (this.marks.length > 0) await this.applyMarks(this.root, this.marks);
    for (let i = this.dirs.length - 1; i >= 0; i--) {
      const [abs, mode] = this.dirs[i] as [string, number];
      this.io(abs, () => chmodSync(abs, mode));
    }
    if (!this.digest || !canonical) return undefined;
    for (const [path, mode] of this.digest.specialModes) {
      if ((lstatSync(join(this.root, path)).mode & 0o7777) !== mode) return undefined;
    }
    // A tree without entries has no records: its digest is that of nothing.
    return digest ?? EMPTY_SHA256;
  }

  /** The digest's counts, as digestTree gives them (valid after finish returned a digest). */
  get digestCounts(): { entries: number; bytes: number } {
    return { entries: this.digest?.entries ?? 0, bytes: this.digest?.bytes ?? 0 };
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

  private createFile(path: string, abs: string, mode: number, size: number): BodySink {
    const record = this.digest?.file(path, mode, size);
    this.executor.createFile(path, abs, mode);
    // open() applies the umask (or a default ACL) and drops set-id bits; fix the mode after the
    // body is written (a write by a non-root owner would clear set-id bits again). A digest
    // computed here must match the tree exactly, so then the mode is always set.
    const fixMode = this.digest !== undefined || (mode & 0o7000) !== 0 || (mode & this.umask) !== 0;
    const executor = this.executor;
    return {
      write: (chunk, start, end) => executor.write(chunk, start, end),
      end: () => executor.closeFile(mode, fixMode, record),
    };
  }

  /** After a failure: stops the executor (closing a file left open mid-body) before clean-up. */
  async close(): Promise<void> {
    await this.executor.abort();
  }

  private io<T>(path: string, fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      throw ioError(path, (error as Error).message, error);
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
