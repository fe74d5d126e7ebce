// Owns the content digest of a live local directory with ignores applied. It walks and records
// entries exactly as @castle/cache's walkTree + digestTree do for a stored tree (names sorted at
// every level, parents first, one record per entry), so the digest equals that of the snapshot
// the store will hold. Unchanged files are not re-read: their sha256 comes from the stat cache.
// Devices, fifos and sockets are left out (a snapshot could not reproduce them).

import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readlinkSync, statSync, type Stats } from "node:fs";
import { resolve } from "node:path";
import { entryRecord, hashFile as defaultHashFile } from "@castle/cache/store";
import { identityOfStats, statIdentity, type FileRead } from "../load/record/stat-identity";
import { SourceError } from "./errors";
import { compileIgnore } from "./ignore";
import { loadStatCache, saveStatCache, statCachePath, type CachedDir, type CachedStat } from "./stat-cache";

export type LocalEntry =
  | { kind: "dir"; path: string; mode: number }
  /** sha256 of the contents, as digested. */
  | { kind: "file"; path: string; mode: number; size: number; sha256: string }
  | { kind: "symlink"; path: string; target: string };

export interface LocalDigestOptions {
  /** Patterns to leave out (see ignore.ts). */
  ignore: readonly string[];
  /** Directory holding stat caches (store.dir("stat-cache")). Default: no cache. */
  statCacheDir?: string;
  /** Hashes one file. Default @castle/cache's hashFile (sync reads, one reused buffer). */
  hashFile?: (path: string, mode: number) => string;
  /** Files changed this recently when the cache is written are hashed again next time. Default 2000. */
  racyMs?: number;
  /** Ignore the stat cache and hash every file (used after a snapshot saw a change). */
  rehashAll?: boolean;
  /** Told, once the walk is done, what it stat'ed: the root (stat), then every directory and
   * file it digested (lstat, taken before the file was read). Symlinks need none: one cannot
   * change without its directory changing. */
  onWalk?: (reads: FileRead[]) => void;
}

export interface LocalDigest {
  /** Equal to digestTree() of a copy of the directory with ignored entries left out. */
  digest: string;
  entries: LocalEntry[];
  /** Bytes of file contents. */
  bytes: number;
  /** Files whose contents were read (the rest came from the stat cache). */
  hashed: number;
}

/** Digests `dir` (absolute) with ignores applied, consulting and refreshing its stat cache. */
export function digestLocalDir(dir: string, options: LocalDigestOptions): LocalDigest {
  const root = resolve(dir);
  assertDirectory(root);
  const ignored = compileIgnore(options.ignore);
  const hashFile = options.hashFile ?? defaultHashFile;
  const cacheFile = options.statCacheDir ? statCachePath(options.statCacheDir, root) : undefined;
  const loaded = cacheFile && !options.rehashAll ? loadStatCache(cacheFile) : { files: new Map<string, CachedStat>(), dirs: new Map<string, CachedDir>() };
  const cached = loaded.files;
  const fresh = new Map<string, CachedStat>();
  const freshDirs = new Map<string, CachedDir>();
  let dirsChanged = false;
  const hash = createHash("sha256");
  // Records are hashed in batches: one update per record costs more than the lstat beside it.
  let pending = "";
  const record = (text: string) => {
    pending += text;
    if (pending.length > 1 << 16) {
      hash.update(pending);
      pending = "";
    }
  };
  const entries: LocalEntry[] = [];
  const reads: FileRead[] | undefined = options.onWalk ? [{ path: root, follow: true, identity: statIdentity(root, true) }] : undefined;
  let bytes = 0;
  let hashed = 0;
  let reused = 0;

  const visit = (dirAbs: string, dirRel: string, dirStat: Stats) => {
    const before = loaded.dirs.get(dirRel);
    const same = before !== undefined && before.mtimeMs === dirStat.mtimeMs && before.ctimeMs === dirStat.ctimeMs;
    const names: [string, string | null][] = same ? before.names : readdirSync(dirAbs).sort().map((n) => [n, null]);
    const listing: [string, string | null][] = [];
    for (const [name, knownTarget] of names) {
      const abs = `${dirAbs}/${name}`;
      const path = dirRel === "" ? name : `${dirRel}/${name}`;
      if (same && knownTarget !== null) {
        // An unchanged directory's symlink is the one recorded (see CachedDir).
        listing.push([name, knownTarget]);
        if (ignored(path, false)) continue;
        entries.push({ kind: "symlink", path, target: knownTarget });
        record(entryRecord({ kind: "symlink", path, target: knownTarget }));
        continue;
      }
      const st = lstatSync(abs);
      listing.push([name, st.isSymbolicLink() ? readlinkSync(abs) : null]);
      const isDir = st.isDirectory();
      if (ignored(path, isDir)) continue;
      const mode = st.mode & 0o7777;
      if (reads && (isDir || st.isFile())) reads.push({ path: abs, follow: false, identity: identityOfStats(st) });
      if (isDir) {
        entries.push({ kind: "dir", path, mode });
        record(entryRecord({ kind: "dir", path, mode, opaque: false }));
        visit(abs, path, st);
      } else if (st.isFile()) {
        const old = cached.get(path);
        let sha256: string;
        if (old && sameStat(old, st)) {
          sha256 = old.sha256;
          reused++;
        } else {
          sha256 = hashFile(abs, mode);
          hashed++;
        }
        fresh.set(path, { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, sha256 });
        bytes += st.size;
        entries.push({ kind: "file", path, mode, size: st.size, sha256 });
        record(entryRecord({ kind: "file", path, mode, size: st.size, absPath: abs }, sha256));
      } else if (st.isSymbolicLink()) {
        const target = listing[listing.length - 1]![1]!;
        entries.push({ kind: "symlink", path, target });
        record(entryRecord({ kind: "symlink", path, target }));
      }
    }
    freshDirs.set(dirRel, { mtimeMs: dirStat.mtimeMs, ctimeMs: dirStat.ctimeMs, names: listing });
    if (!same) dirsChanged = true;
  };
  try {
    visit(root, "", lstatSync(root));
  } catch (error) {
    throw new SourceError("CASTLE_SOURCE_MISSING", `cannot read the local source ${root}: ${(error as Error).message}`, {
      cause: error, data: { dir: root },
    });
  }
  if (cacheFile && (hashed > 0 || reused !== cached.size || dirsChanged || freshDirs.size !== loaded.dirs.size)) {
    try {
      saveStatCache(cacheFile, root, { files: fresh, dirs: freshDirs }, Date.now(), options.racyMs ?? 2000);
    } catch {
      // The cache only saves time; failing to write it changes nothing else.
    }
  }
  hash.update(pending);
  if (reads) options.onWalk?.(reads);
  return { digest: hash.digest("hex"), entries, bytes, hashed };
}

function sameStat(old: CachedStat, st: Stats): boolean {
  return old.size === st.size && old.mtimeMs === st.mtimeMs && old.ctimeMs === st.ctimeMs && old.ino === st.ino;
}

function assertDirectory(root: string): void {
  let isDir = false;
  try {
    isDir = statSync(root).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) {
    throw new SourceError("CASTLE_SOURCE_MISSING", `the local source ${root} is not a directory`, {
      data: { dir: root }, hint: "check the path given to source.local(), relative to the file that declares it",
    });
  }
}
