// Owns computing a tree's output digest while it is unpacked, from the entries as they are
// written, so that a pull need not read the whole tree back to check it. Castle packs in walkTree
// order with entryRecord semantics, so hashing the records in archive order gives exactly
// digestTree() of the result — provided the archive really is in walk order. That is checked
// entry by entry (each path must sort strictly after the previous one, component by component,
// as walkTree sorts names); an archive in any other order, an opaque marker that does not
// directly follow its directory, or a set-id mode the kernel did not keep makes the result
// "not canonical", and the store then digests the tree from disk as before. This class checks
// the order and renders the records; the executor (tree-executor.ts), which sees file contents
// as it writes them, hashes contents and records in the same order.

import { entryRecord } from "../store/digest-tree";

export class UnpackDigest {
  private previous: string[] = [];
  private pendingDir: { path: string; mode: number } | undefined;
  private canonical = true;
  /** Entries (and their modes) with set-id or sticky bits, to be checked on disk at the end. */
  readonly specialModes: Array<[string, number]> = [];
  entries = 0;
  bytes = 0;

  /** emit receives each record (but files'), in order. */
  constructor(private readonly emit: (record: string) => void) {}

  dir(path: string, mode: number): void {
    if (!this.advance(path)) return;
    this.pendingDir = { path, mode };
    this.noteMode(path, mode);
  }

  /** The directory entry just before this marker is opaque; anywhere else the order is not Castle's. */
  opaque(dir: string): void {
    if (!this.canonical) return;
    if (this.pendingDir?.path !== dir) {
      this.canonical = false;
      return;
    }
    this.record(entryRecord({ kind: "dir", path: dir, mode: this.pendingDir.mode, opaque: true }));
    this.pendingDir = undefined;
  }

  /** A file's record without its content digest and newline (which the executor appends once
   * it has hashed the body), or undefined once the order broke. */
  file(path: string, mode: number, size: number): string | undefined {
    if (!this.advance(path)) return undefined;
    this.noteMode(path, mode);
    this.bytes += size;
    return entryRecord({ kind: "file", path, mode, size, absPath: "" }, "").slice(0, -1);
  }

  symlink(path: string, target: string): void {
    if (this.advance(path)) this.record(entryRecord({ kind: "symlink", path, target }));
  }

  /** A whiteout: walkTree sees it under its target's name, so that is where it sorts. */
  whiteout(target: string): void {
    if (this.advance(target)) this.record(entryRecord({ kind: "whiteout", path: target }));
  }

  /** Marks the result as unusable (e.g. a mode check failed on disk). */
  spoil(): void {
    this.canonical = false;
  }

  /** Emits what is pending; returns whether the records describe the tree (Castle's order). */
  finish(): boolean {
    this.flushDir();
    return this.canonical;
  }

  private noteMode(path: string, mode: number): void {
    if ((mode & 0o7000) !== 0) this.specialModes.push([path, mode]);
  }

  private record(text: string): void {
    this.emit(text);
  }

  private flushDir(): void {
    if (this.pendingDir && this.canonical) {
      this.record(entryRecord({ kind: "dir", path: this.pendingDir.path, mode: this.pendingDir.mode, opaque: false }));
    }
    this.pendingDir = undefined;
  }

  /** Counts the entry and checks it sorts after the previous one; false once the order broke. */
  private advance(path: string): boolean {
    if (!this.canonical) return false;
    this.flushDir();
    this.entries++;
    const parts = path.split("/");
    if (!sortsAfter(parts, this.previous)) {
      this.canonical = false;
      return false;
    }
    this.previous = parts;
    return true;
  }
}

/** walkTree's order: component by component (as Array#sort compares strings), parents first. */
function sortsAfter(parts: string[], previous: string[]): boolean {
  const n = Math.min(parts.length, previous.length);
  for (let i = 0; i < n; i++) {
    const a = parts[i] as string;
    const b = previous[i] as string;
    if (a !== b) return a > b;
  }
  return parts.length > previous.length;
}
