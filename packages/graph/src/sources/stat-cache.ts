// Owns the stat cache of local sources, git-index style: per source directory, relpath → size,
// mtime, ctime, inode and sha256, so hashing an unchanged directory re-reads no file. Entries
// modified within `racyMs` of the moment the cache is written are not saved ("racily clean":
// a same-size rewrite in the same clock tick would be invisible), so they are hashed again.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "@castle/cache";

export interface CachedStat {
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
  sha256: string;
}

const VERSION = 1;

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
    const [size, mtime, ctime, ino, sha256] = value as unknown[];
    if (typeof sha256 !== "string" || !/^[0-9a-f]{64}$/.test(sha256)) continue;
    try {
      out.set(path, {
        size: BigInt(size as string), mtimeNs: BigInt(mtime as string), ctimeNs: BigInt(ctime as string),
        ino: BigInt(ino as string), sha256,
      });
    } catch {
      // A malformed entry is simply hashed again.
    }
  }
  return out;
}

/** Writes the entries that are not racy at `nowNs` (atomically; the last writer wins). */
export function saveStatCache(
  file: string, dir: string, entries: Map<string, CachedStat>, nowNs: bigint, racyMs: number,
): void {
  const limit = nowNs - BigInt(Math.round(racyMs * 1e6));
  const out: Record<string, [string, string, string, string, string]> = {};
  for (const [path, e] of entries) {
    if (e.mtimeNs >= limit || e.ctimeNs >= limit) continue;
    out[path] = [e.size.toString(), e.mtimeNs.toString(), e.ctimeNs.toString(), e.ino.toString(), e.sha256];
  }
  writeFileAtomic(file, JSON.stringify({ version: VERSION, dir, entries: out }));
}

/** Wall-clock time in nanoseconds, comparable with file mtimes and ctimes. */
export function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}
