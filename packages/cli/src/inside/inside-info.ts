// Owns what a system started by `castle run` tells the Castle inside it, through one variable,
// CASTLE_INSIDE (JSON): which instance it is, how it was run, where `castle edit` records edited
// sources and puts their files, and where the directories Castle mounted in live on the host (so
// that a path inside can be named on the host, at any depth of nesting). Also the edits file
// itself: { "sources": { "<source name>": "<dir inside the system>" } }, which every Castle build
// inside reads as overrides (a child process cannot change its shell's environment, so
// `castle edit` writes this file instead of setting CASTLE_OVERRIDE_<name>).

import { readFileSync } from "node:fs";
import { writeFileAtomic } from "@castle/cache/store";
import { normaliseSourceName } from "@castle/graph";

export interface InsideInfo {
  /** The instance id of the system this Castle runs in. */
  instance: string;
  /** The command line that started it on the outside (`castle run ...` arguments). */
  run: string[];
  /** The edits file (a path inside). */
  edits: string;
  /** Where `castle edit` puts a source's files: <editDir>/<source name> (a path inside). */
  editDir: string;
  /** Path inside → the same directory on the outermost host. */
  hostPaths: Record<string, string>;
}

export interface EditsFile {
  sources: Record<string, string>;
}

/** CASTLE_INSIDE, or undefined outside any system (or when it is unreadable). */
export function insideInfo(env: NodeJS.ProcessEnv = process.env): InsideInfo | undefined {
  if (!env.CASTLE_INSIDE) return undefined;
  try {
    const info = JSON.parse(env.CASTLE_INSIDE) as InsideInfo;
    return typeof info.edits === "string" && typeof info.editDir === "string" && typeof info.hostPaths === "object" ? info : undefined;
  } catch {
    return undefined;
  }
}

/** This path as the outermost host names it: through the mounts the Castles outside made. */
export function hostPath(path: string, info: InsideInfo | undefined = insideInfo()): string {
  if (!info) return path;
  let best: string | undefined;
  for (const inside of Object.keys(info.hostPaths)) {
    if ((path === inside || path.startsWith(`${inside}/`)) && (best === undefined || inside.length > best.length)) best = inside;
  }
  return best === undefined ? path : info.hostPaths[best]! + path.slice(best.length);
}

export function readEdits(file: string): EditsFile {
  try {
    const parsed = JSON.parse(readFileSync(file, "utf8")) as EditsFile;
    return typeof parsed.sources === "object" && parsed.sources !== null ? { sources: { ...parsed.sources } } : { sources: {} };
  } catch {
    return { sources: {} };
  }
}

export function writeEdits(file: string, edits: EditsFile): void {
  writeFileAtomic(file, JSON.stringify(edits, null, 2) + "\n");
}

/**
 * The edited sources a build inside uses, by normalised source name, for the sources this system
 * declares (an edit of a source it does not have is simply not used). Explicit overrides win.
 */
export function editOverrides(declared: Iterable<string>, env: NodeJS.ProcessEnv = process.env): Map<string, string> {
  const info = insideInfo(env);
  const out = new Map<string, string>();
  if (!info) return out;
  const names = new Set([...declared].map(normaliseSourceName));
  for (const [name, dir] of Object.entries(readEdits(info.edits).sources)) {
    if (names.has(normaliseSourceName(name))) out.set(normaliseSourceName(name), dir);
  }
  return out;
}
