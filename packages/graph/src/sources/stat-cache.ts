// Owns the stat cache of local sources, git-index style: per source directory, relpath → size,
// mtime, ctime, inode and sha256, so hashing an unchanged directory re-reads no file. Entries
// modified within `racyMs` of the moment the cache is written are not saved ("racily clean":
// a same-size rewrite in the same clock tick would be invisible), so they are hashed again.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "@castle/cache";

/** What a file looked like when it was hashed. Times are lstat's mtimeMs/ctimeMs: doubles with
 * sub-microsecond resolution, exact through JSON, and much cheaper than BigInt stats. */
export interface CachedStat {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  sha256: string;
}

const VERSION = 2;

/** The cache file for one source directory: named by a hash of its absolute path. */
export function statCachePath(cacheDir: string, absoluteDir: string): string {
  return join(cacheDir, `${createHash("sha256").update(absoluteDir).digest("hex")}.json`);
}

/** The cached entries, or an empty map when the file is missing or unreadable. */
export function loadStatCache(file: string): Map<string, CachedStat> {
  const out = new Map<string, CachedStat>();
  let parsed: { version?: unknown; entries?: Record<string, unknown> };
  try {
    parsed = JSON.parse(readFileSync(file, "utf8")) as typeof parsed;
  } catch {
    return out;
  }
  if (parsed.version !== VERSION || typeof parsed.entries !== "object" || parsed.entries === null) return out;
  for (const [path, value] of Object.entries(parsed.entries)) {
    if (!Array.isArray(value) || value.length !== 5) continue;
    const [size, mtimeMs, ctimeMs, ino, sha256] = value as unknown[];
    if (typeof size !== "number" || typeof mtimeMs !== "number" || typeof ctimeMs !== "number" || typeof ino !== "number") continue;
    if (typeof sha256 !== "string" || sha256.length !== 64) continue;
    out.set(path, { size, mtimeMs, ctimeMs, ino, sha256 });
  }
  return out;
}

/** Writes the entries that are not racy at `nowMs` (atomically; the last writer wins). */
export function saveStatCache(file: string, dir: string, entries: Map<string, CachedStat>, nowMs: number, racyMs: number): void {
  const limit = nowMs - racyMs;
  const out: Record<string, [number, number, number, number, string]> = {};
  for (const [path, e] of entries) {
    if (e.mtimeMs >= limit || e.ctimeMs >= limit) continue;
    out[path] = [e.size, e.mtimeMs, e.ctimeMs, e.ino, e.sha256];
  }
  writeFileAtomic(file, JSON.stringify({ version: VERSION, dir, entries: out }));
}
