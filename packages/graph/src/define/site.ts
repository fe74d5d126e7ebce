// Owns finding where in the user's definition a layer, source or system was declared: the first
// stack frame outside Castle's own code. The loader enables source maps, so frames name castle.ts.

import { dirname, relative } from "node:path";
import type { DefinitionSite } from "../types";

const OWN_FRAME = /[\\/]packages[\\/]graph[\\/]src[\\/]define[\\/]|[\\/]dist[\\/]api\.mjs|node:internal|castle:api/;

export interface CallerLocation {
  file: string;
  line: number;
  column: number;
}

/** The user's call site: the first frame that is not Castle's definition API. */
export function callerLocation(): CallerLocation | undefined {
  const stack = new Error().stack?.split("\n").slice(1) ?? [];
  for (const frame of stack) {
    if (OWN_FRAME.test(frame)) continue;
    const location = /\(?((?:file:\/\/)?[^()\s]+):(\d+):(\d+)\)?\s*$/.exec(frame.trim());
    if (!location) continue;
    const file = decodeURIComponent(location[1]!.replace(/^file:\/\//, ""));
    return { file, line: Number(location[2]), column: Number(location[3]) };
  }
  return undefined;
}

/** "file:line:col" of the user's call (relative to the working directory when inside it). */
export function callerSite(): DefinitionSite {
  const at = callerLocation();
  if (!at) return undefined;
  const rel = relative(process.cwd(), at.file);
  return `${rel.startsWith("..") ? at.file : rel}:${at.line}:${at.column}`;
}

/** The directory of the user's calling file, against which relative paths are resolved. */
export function callerDir(): string {
  const at = callerLocation();
  return at && at.file.startsWith("/") ? dirname(at.file) : process.cwd();
}
