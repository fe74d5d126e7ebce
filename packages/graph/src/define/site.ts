// Owns finding where in the user's definition a layer, source or system was declared: the first
// stack frame outside Castle's own code. The loader enables source maps, so frames name castle.ts.
// Formatting a source-mapped stack is the costly part, so a site is captured eagerly (an Error
// object) and formatted only when an error message or a reader asks for it.

import { dirname, relative } from "node:path";
import type { DefinitionSite } from "../types";

// With source maps on, frames of the bundled API (dist/api.mjs) name its sources relative to the
// bundle (…/graph/src/define/layer.ts), wherever Castle is installed — not only in this repo.
const OWN_FRAME = /[\\/]graph[\\/]src[\\/]define[\\/]|[\\/]dist[\\/]api\.mjs|node:internal|castle:api/;

export interface CallerLocation {
  file: string;
  line: number;
  column: number;
}

/** A site captured now and formatted on first use. */
export type SiteRef = () => DefinitionSite;

function locate(stack: string | undefined): CallerLocation | undefined {
  for (const frame of stack?.split("\n").slice(1) ?? []) {
    if (OWN_FRAME.test(frame)) continue;
    const location = /\(?((?:file:\/\/)?[^()\s]+):(\d+):(\d+)\)?\s*$/.exec(frame.trim());
    if (!location) continue;
    const file = decodeURIComponent(location[1]!.replace(/^file:\/\//, ""));
    return { file, line: Number(location[2]), column: Number(location[3]) };
  }
  return undefined;
}

function format(at: CallerLocation | undefined): DefinitionSite {
  if (!at) return undefined;
  const rel = relative(process.cwd(), at.file);
  return `${rel.startsWith("..") ? at.file : rel}:${at.line}:${at.column}`;
}

/** The user's call site, as "file:line:col" (relative to the working directory when inside it). */
export function captureSite(): SiteRef {
  const holder = new Error();
  let site: DefinitionSite | null = null;
  return () => (site === null ? (site = format(locate(holder.stack))) : site);
}

/**
 * Where each module of a loaded definition bundle starts: bundle URL → [first line, original
 * file] sorted by line. The loader registers this so that finding the calling file needs no
 * source-map decoding (which costs milliseconds on every `castle run`).
 */
export const BUNDLE_FILES = Symbol.for("castle.definition.files");
type BundleFiles = Map<string, [line: number, file: string][]>;

/** The directory of the user's calling file, against which relative paths are resolved. */
export function callerDir(): string {
  const fast = callerFileFromBundle();
  if (fast) return dirname(fast);
  const at = locate(new Error().stack);
  return at && at.file.startsWith("/") ? dirname(at.file) : process.cwd();
}

function callerFileFromBundle(): string | undefined {
  const registry = (globalThis as { [BUNDLE_FILES]?: BundleFiles })[BUNDLE_FILES];
  if (!registry) return undefined;
  const saved = Error.prepareStackTrace;
  let sites: NodeJS.CallSite[] = [];
  Error.prepareStackTrace = (_error, callSites) => callSites;
  try {
    sites = new Error().stack as unknown as NodeJS.CallSite[];
  } finally {
    Error.prepareStackTrace = saved;
  }
  for (const site of Array.isArray(sites) ? sites : []) {
    const modules = registry.get(site.getFileName() ?? "");
    if (!modules) continue;
    const line = site.getLineNumber() ?? 0;
    let file: string | undefined;
    for (const [start, path] of modules) {
      if (start > line) break;
      file = path;
    }
    if (file && !OWN_FRAME.test(file)) return file;
  }
  return undefined;
}

/** Freezes a definition value with a `definedAt` that is formatted when first read. */
export function withSite<T extends object>(value: T, site: SiteRef): T & { readonly definedAt: DefinitionSite } {
  Object.defineProperty(value, "definedAt", { get: site, enumerable: true });
  return Object.freeze(value) as T & { readonly definedAt: DefinitionSite };
}
