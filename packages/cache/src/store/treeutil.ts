// Owns finding and calling castle-treeutil, the small C program that does what Node's fs cannot:
// list overlayfs-opaque directories, make whiteouts and opaque marks, and hold kernel file locks.

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { CastleError } from "@castle/errors";
import { treeutilServer } from "./treeutil-serve";

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
    if (candidate && existsSync(candidate)) return (cached = resolve(candidate));
  }
  throw new CastleError("CASTLE_CACHE_MISSING_TOOL", "castle-treeutil is not built", {
    hint: "run `npm ci` (or `npm run build`) to compile Castle's C programs",
    data: { searched: candidates.filter(Boolean) },
  });
}

/** Relative paths of the directories under root that overlayfs treats as opaque. */
export function listOpaqueDirs(root: string): Set<string> {
  const result = spawnSync(treeutilPath(), ["opaque", root], { maxBuffer: 1 << 30 });
  if (result.status !== 0) throw cannotRead(root, result.stderr?.toString().trim() || result.error?.message || `exit ${result.status}`);
  return parseOpaque(result.stdout);
}

/**
 * listOpaqueDirs without blocking the event loop or forking this process: the scan runs in
 * castle-treeutil's helper (store/treeutil-serve.ts) when it is available.
 */
export async function listOpaqueDirsAsync(root: string): Promise<Set<string>> {
  const server = await treeutilServer();
  if (!server) return listOpaqueDirs(root);
  let result;
  try {
    result = await (await server.run({ argv: [treeutilPath(), "opaque", root], stdout: "capture" })).done;
  } catch {
    return listOpaqueDirs(root); // The helper failed; do it the slow way.
  }
  if (result.code !== 0) throw cannotRead(root, result.stderr.trim() || `exit ${result.code}`);
  return parseOpaque(result.stdout);
}

function parseOpaque(out: Buffer): Set<string> {
  return new Set(out.toString().split("\0").filter((p) => p.length > 0));
}

function cannotRead(root: string, why: string): CastleError {
  return new CastleError("CASTLE_CACHE_IO", `cannot read the tree at ${root}: ${why}`, { data: { root, stderr: why } });
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
  if (result.status !== 0) throw cannotMark(root, result.stderr?.toString().trim());
}

/** applyOverlayMarks through castle-treeutil's helper when it is available. */
export async function applyOverlayMarksAsync(root: string, marks: OverlayMark[]): Promise<void> {
  if (marks.length === 0) return;
  const server = await treeutilServer();
  if (server) {
    let result;
    try {
      const input = marks.flatMap((m) => [m.op, m.path]);
      result = await (await server.run({ argv: [treeutilPath(), "apply", root], stdin: { input } })).done;
    } catch {
      result = undefined; // The helper failed before running it: do it the slow way below.
    }
    if (result) {
      if (result.code !== 0) throw cannotMark(root, result.stderr.trim());
      return;
    }
  }
  applyOverlayMarks(root, marks);
}

function cannotMark(root: string, stderr: string | undefined): CastleError {
  return new CastleError("CASTLE_CACHE_IO", `cannot write overlay marks under ${root}`, { data: { root, stderr } });
}
