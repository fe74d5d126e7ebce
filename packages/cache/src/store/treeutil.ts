// Owns finding and calling castle-treeutil, the small C program that does what Node's fs cannot:
// list overlayfs-opaque directories, make whiteouts and opaque marks, and hold kernel file locks.

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CastleError } from "@castle/errors";

let cached: string | undefined;

/** Path of the compiled castle-treeutil binary. */
export function treeutilPath(): string {
  if (cached) return cached;
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    process.env.CASTLE_TREEUTIL,
    join(here, "castle-treeutil"),
    join(here, "../../native/castle-treeutil"),
    join(here, "../native/castle-treeutil"),
  ];
  for (const candidate of candidates) {
    if (candidate && existsSync(candidate)) return (cached = candidate);
  }
  throw new CastleError("CASTLE_CACHE_MISSING_TOOL", "castle-treeutil is not built", {
    hint: "run `npm ci` (or `npm run build`) to compile Castle's C programs",
    data: { searched: candidates.filter(Boolean) },
  });
}

/** Relative paths of the directories under root that overlayfs treats as opaque. */
export function listOpaqueDirs(root: string): Set<string> {
  const result = spawnSync(treeutilPath(), ["opaque", root], { maxBuffer: 1 << 30 });
  if (result.status !== 0) {
    throw new CastleError("CASTLE_CACHE_IO", `cannot read the tree at ${root}: ${result.stderr?.toString().trim() || result.error?.message || `exit ${result.status}`}`, {
      data: { root, stderr: result.stderr?.toString().trim() },
    });
  }
  const out = result.stdout.toString();
  return new Set(out.split("\0").filter((p) => p.length > 0));
}

/** A whiteout ("w") or opaque mark ("o") to create under a tree. */
export interface OverlayMark {
  op: "w" | "o";
  path: string;
}

/** Creates whiteouts and opaque marks beneath root, refusing paths that would leave it. */
export function applyOverlayMarks(root: string, marks: OverlayMark[]): void {
  if (marks.length === 0) return;
  const input = marks.map((m) => `${m.op}\0${m.path}\0`).join("");
  const result = spawnSync(treeutilPath(), ["apply", root], { input });
  if (result.status !== 0) {
    throw new CastleError("CASTLE_CACHE_IO", `cannot write overlay marks under ${root}`, {
      data: { root, stderr: result.stderr?.toString().trim() },
    });
  }
}
