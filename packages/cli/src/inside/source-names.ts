// Owns finding a declared source by the name a user typed (`castle edit musl-src`, or a system's
// `edit` option): dashes and underscores alike, case ignored, and for a name that matches none
// the closest declared names, so the error says what was meant.

import { CastleError, type CastleErrorCode } from "@castle/errors";
import { normaliseSourceName, realizeSource, type LayerGraph, type Source } from "@castle/graph";
import type { LocalStore } from "@castle/cache/store";

export function findSource(graph: LayerGraph, name: string, code: CastleErrorCode, where: string): Source {
  const wanted = normaliseSourceName(name);
  const source = [...graph.sources.values()].find((s) => normaliseSourceName(s.name) === wanted);
  if (source) return source;
  const names = [...graph.sources.keys()];
  const close = closest(name, names);
  throw new CastleError(
    code,
    `${where}: system ${graph.system.name} has no source "${name}"${close.length ? ` (did you mean ${close.map((c) => `"${c}"`).join(" or ")}?)` : ""}`,
    { data: { name, sources: names }, hint: `its sources are: ${names.join(", ") || "(none)"}` },
  );
}

/** A declared source's pinned, verified files (overrides ignored) as a tree in the store. */
export async function pinnedSourceTree(graph: LayerGraph, store: LocalStore, name: string, code: CastleErrorCode, where: string): Promise<string> {
  const source = findSource(graph, name, code, where);
  const digest = await realizeSource(source, { store, overrides: new Map(), env: process.env });
  return store.treePath(digest);
}

/**
 * What `name` most likely meant: the names it begins (`musl` for `musl-src`), else the nearest by
 * edit distance (at most a third of its length away).
 */
export function closest(name: string, names: string[]): string[] {
  const lower = name.toLowerCase();
  const extended = lower.length >= 2 ? names.filter((candidate) => candidate.toLowerCase().startsWith(lower)) : [];
  if (extended.length > 0) return extended.slice(0, 3);
  const limit = Math.max(2, Math.floor(name.length / 3));
  const scored = names.map((candidate) => ({ candidate, d: distance(lower, candidate.toLowerCase()) }));
  const best = Math.min(...scored.map((s) => s.d));
  return best <= limit ? scored.filter((s) => s.d === best).map((s) => s.candidate).slice(0, 3) : [];
}

function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length]!;
}
