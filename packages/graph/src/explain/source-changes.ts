// Owns saying which files of a local source changed since its last build: the tree it had then
// is still in the store (keyed by its content digest, which is the source's id), so it is
// compared with the directory as it is now (ignores applied, as for the digest): files added,
// removed, or changed (size, mode, link target or bytes). Used where a changed local source
// explains a rebuild, so the user reads file names, not two digests.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { walkTree, type Store } from "@castle/cache/store";
import { digestLocalDir } from "../sources";
import { effectiveSource } from "../sources/overrides";
import type { Source } from "../types";

/** How many changed files are named before the rest are counted. */
const NAMED = 5;

export interface SourceChange {
  /** The source's name (as in layer keys). */
  name: string;
  before: string;
  now: string;
}

/** "changed src/exit/_Exit.c; added a.c; +3 more", or undefined when it cannot be told. */
export type SourceChangeDetail = (change: SourceChange) => string | undefined;

/** Tells which files of a local source changed, when its old tree is still stored. */
export function localSourceChanges(store: Store, sources: ReadonlyMap<string, Source>, overrides: Map<string, string>): SourceChangeDetail {
  return ({ name, before, now }) => {
    const source = sources.get(name);
    if (!source || !before.startsWith("local:") || !now.startsWith("local:")) return undefined;
    const oldDigest = before.slice("local:".length);
    if (!store.hasTree(oldDigest)) return undefined;
    const used = effectiveSource(source, overrides).source;
    if (used.spec.type !== "local") return undefined;
    try {
      return describeFiles(diffTrees(store.treePath(oldDigest), used.spec.dir, used.spec.ignore, store.dir("stat-cache")));
    } catch {
      return undefined; // Explaining must never fail a build.
    }
  };
}

interface FileChanges {
  changed: string[];
  added: string[];
  removed: string[];
}

function diffTrees(oldRoot: string, dir: string, ignore: readonly string[], statCacheDir: string): FileChanges {
  const old = new Map(walkTree(oldRoot).map((entry) => [entry.path, entry]));
  const changes: FileChanges = { changed: [], added: [], removed: [] };
  for (const entry of digestLocalDir(dir, { ignore, statCacheDir }).entries) {
    const before = old.get(entry.path);
    old.delete(entry.path);
    if (!before) {
      if (entry.kind !== "dir") changes.added.push(entry.path);
      continue;
    }
    if (before.kind !== entry.kind) changes.changed.push(entry.path);
    else if (entry.kind === "file" && before.kind === "file") {
      const same = before.size === entry.size && (before.mode & 0o7777) === (entry.mode & 0o7777) &&
        readFileSync(join(oldRoot, entry.path)).equals(readFileSync(join(dir, entry.path)));
      if (!same) changes.changed.push(entry.path);
    } else if (entry.kind === "symlink" && before.kind === "symlink" && before.target !== entry.target) changes.changed.push(entry.path);
  }
  for (const [path, entry] of old) if (entry.kind !== "dir") changes.removed.push(path);
  return changes;
}

function describeFiles({ changed, added, removed }: FileChanges): string | undefined {
  const named: string[] = [];
  for (const [word, paths] of [["changed", changed], ["added", added], ["removed", removed]] as const) {
    if (paths.length === 0) continue;
    const room = NAMED - named.reduce((n, part) => n + part.split(", ").length, 0);
    if (room <= 0) break;
    named.push(`${word} ${paths.slice(0, room).join(", ")}`);
  }
  const total = changed.length + added.length + removed.length;
  if (total === 0) return undefined;
  const shown = Math.min(total, NAMED);
  return `${named.join("; ")}${total > shown ? `; +${total - shown} more` : ""}`;
}
