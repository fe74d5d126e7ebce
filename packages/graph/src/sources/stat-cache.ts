// Owns the stat cache of local sources, git-index style: per source directory, relpath → size,
// mtime, ctime, inode and sha256, so hashing an unchanged directory re-reads no file. Entries
// modified within `racyMs` of the moment the cache is written are not saved ("racily clean":
// a same-size rewrite in the same clock tick would be invisible), so they are hashed again.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "@castle/cache/store";

/** What a file looked like when it was hashed. Times are lstat's mtimeMs/ctimeMs: doubles with
 * sub-microsecond resolution, exact through JSON, and much cheaper than BigInt stats. */
export interface CachedStat {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  sha256: string;
}

/** What a directory looked like: its stamp and its symlinks' targets. While a directory's mtime
 * and ctime are unchanged, no entry was added, removed or renamed in it, and a symlink cannot
 * change without being replaced — so its links need no lstat or readlink. */
export interface CachedDir {
  mtimeMs: number;
  ctimeMs: number;
  /** Every name in the directory, sorted, with its symlink target or "" for other kinds. */
  names: [name: string, target: string | null][];
}

const VERSION = 3;

/** Where the digest of the tree last realized from a source directory is kept (see local.ts). */
export function lastTreePath(cacheDir: string, absoluteDir: string): string {
  return join(cacheDir, `${createHash("sha256").update(absoluteDir).digest("hex")}.tree`);
}

/** The digest of the tree last realized from this directory, if one was recorded. */
export function loadLastTree(cacheDir: string, absoluteDir: string): string | undefined {
  try {
    const digest = readFileSync(lastTreePath(cacheDir, absoluteDir), "utf8").trim();
    return /^[0-9a-f]{64}$/.test(digest) ? digest : undefined;
  } catch {
    return undefined;
  }
}

export function saveLastTree(cacheDir: string, absoluteDir: string, digest: string): void {
  try {
    writeFileAtomic(lastTreePath(cacheDir, absoluteDir), `${digest}\n`, { durable: false });
  } catch {
    // Only saves time next time.
  }
}

/** The cache file for one source directory: named by a hash of its absolute path. */
export function statCachePath(cacheDir: string, absoluteDir: string): string {
  return join(cacheDir, `${createHash("sha256").update(absoluteDir).digest("hex")}.json`);
}

export interface StatCache {
  files: Map<string, CachedStat>;
  dirs: Map<string, CachedDir>;
}

/** The cached entries, or empty maps when the file is missing or unreadable. */
export function loadStatCache(file: string): StatCache {
  const out = new Map<string, CachedStat>();
  const dirs = new Map<string, CachedDir>();
  let parsed: { version?: unknown; entries?: Record<string, unknown>; dirs?: Record<string, unknown> };
  try {
    parsed = JSON.parse(readFileSync(file, "utf8")) as typeof parsed;
  } catch {
    return { files: out, dirs };
  }
  if (parsed.version !== VERSION || typeof parsed.entries !== "object" || parsed.entries === null) return { files: out, dirs };
  for (const [path, value] of Object.entries(parsed.dirs ?? {})) {
    const dir = value as Partial<CachedDir>;
    if (typeof dir.mtimeMs === "number" && typeof dir.ctimeMs === "number" && Array.isArray(dir.names)) dirs.set(path, dir as CachedDir);
  }
  for (const [path, value] of Object.entries(parsed.entries)) {
    if (!Array.isArray(value) || value.length !== 5) continue;
    const [size, mtimeMs, ctimeMs, ino, sha256] = value as unknown[];
    if (typeof size !== "number" || typeof mtimeMs !== "number" || typeof ctimeMs !== "number" || typeof ino !== "number") continue;
    if (typeof sha256 !== "string" || sha256.length !== 64) continue;
    out.set(path, { size, mtimeMs, ctimeMs, ino, sha256 });
  }
  return { files: out, dirs };
}

/** Writes the entries that are not racy at `nowMs` (atomically; the last writer wins). */
export function saveStatCache(file: string, dir: string, cache: StatCache, nowMs: number, racyMs: number): void {
  const limit = nowMs - racyMs;
  const out: Record<string, [number, number, number, number, string]> = {};
  for (const [path, e] of cache.files) {
    if (e.mtimeMs >= limit || e.ctimeMs >= limit) continue;
    out[path] = [e.size, e.mtimeMs, e.ctimeMs, e.ino, e.sha256];
  }
  const dirs: Record<string, CachedDir> = {};
  for (const [path, d] of cache.dirs) {
    if (d.mtimeMs >= limit || d.ctimeMs >= limit) continue;
    dirs[path] = d;
  }
  // Losing the cache in a crash only costs a re-hash: no fsync.
  writeFileAtomic(file, JSON.stringify({ version: VERSION, dir, entries: out, dirs }), { durable: false });
}
