// Owns inline sources: their identity (a hash of a canonical encoding of paths, modes and
// contents) and writing their files into a staging tree.

import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { SourceError } from "./errors";

export type InlineFiles = Record<string, { content: string; mode: number }>;

/** sha256 over the files sorted by path: path, mode (octal), byte length and bytes of each. */
export function inlineDigest(files: InlineFiles): string {
  const hash = createHash("sha256");
  hash.update("castle-inline-1\n");
  for (const path of Object.keys(files).sort()) {
    const file = files[path]!;
    const bytes = Buffer.from(file.content, "utf8");
    hash.update(`${path}\0${file.mode.toString(8)}\0${bytes.length}\0`);
    hash.update(bytes);
  }
  return hash.digest("hex");
}

/** Writes the files under dest (directories 0755), refusing a path that is also a directory. */
export function writeInlineFiles(files: InlineFiles, dest: string): void {
  const paths = Object.keys(files).sort();
  const asDirs = new Set<string>();
  for (const path of paths) {
    for (let d = dirname(path); d !== "." && d !== "/"; d = dirname(d)) asDirs.add(d);
  }
  for (const path of paths) {
    if (asDirs.has(path)) {
      throw new SourceError("CASTLE_SOURCE_INVALID", `source.inline: ${path} is both a file and a directory`, {
        data: { path },
      });
    }
  }
  for (const dir of [...asDirs].sort()) mkdirSync(join(dest, dir), { recursive: true, mode: 0o755 });
  for (const dir of asDirs) chmodSync(join(dest, dir), 0o755);
  for (const path of paths) {
    const file = files[path]!;
    const target = join(dest, path);
    writeFileSync(target, file.content, { mode: file.mode });
    chmodSync(target, file.mode); // The umask must not change what the tree is.
  }
}
