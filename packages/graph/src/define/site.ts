// Owns finding where in the user's definition a layer, source or system was declared: the first
// stack frame outside Castle's own code, mapped back to the user's file. The loader registers,
// per compiled bundle, where each module starts and where its source map is; mapping happens
// only when a site is actually read (an error message), because decoding source maps on every
// `castle run` costs more than everything else the run does.

import { readFileSync } from "node:fs";
import { SourceMap } from "node:module";
import { dirname, relative } from "node:path";
import { fileURLToPath } from "node:url";
import type { DefinitionSite } from "../types";

// Source-mapped frames of the bundled API name its sources relative to dist/api.mjs
// (…/graph/src/define/layer.ts) wherever Castle is installed, not only under packages/ here.
const OWN_FILE = /[\\/]graph[\\/]src[\\/]define[\\/]|[\\/]dist[\\/]api\.mjs$|^node:|^castle:api$/;

/** What the loader calls the API's module in a definition bundle (see BundleInfo.modules). */
export const API_MODULE = "castle:api";

export interface CallerLocation {
  file: string;
  line: number;
  column: number;
}

/** A site captured now and formatted on first use. */
export type SiteRef = () => DefinitionSite;

/** What the loader tells the API about a compiled definition bundle, by its file URL or path. */
export interface BundleInfo {
  /** Where each module starts: [first line, absolute original path], sorted by line. */
  modules: [number, string][];
  /** The bundle's source map file. */
  sourceMap: string;
}

export const BUNDLES = Symbol.for("castle.definition.bundles");
type Registry = Map<string, BundleInfo & { parsed?: SourceMap | null }>;

function registry(): Registry | undefined {
  return (globalThis as { [BUNDLES]?: Registry })[BUNDLES];
}

/** Registers a loaded bundle (called by the loader before importing it). */
export function registerBundle(url: string, info: BundleInfo): void {
  const all = ((globalThis as { [BUNDLES]?: Registry })[BUNDLES] ??= new Map());
  all.set(url, { ...info });
}

/** Maps a position in a registered bundle to the user's file; other positions are returned as they are. */
export function originalPosition(file: string, line: number, column: number): CallerLocation {
  const path = file.startsWith("file://") ? fileURLToPath(file) : file;
  // Registered by URL (an ES module bundle) or by path (a CommonJS one): try the other form too.
  const bundle = registry()?.get(file) ?? registry()?.get(file === path ? `file://${path}` : path);
  if (!bundle) return { file: path, line, column };
  if (bundle.parsed === undefined) {
    try {
      bundle.parsed = new SourceMap(JSON.parse(readFileSync(bundle.sourceMap, "utf8")));
    } catch {
      bundle.parsed = null;
    }
  }
  const entry = bundle.parsed?.findEntry(line - 1, column - 1) as
    | { originalSource?: string; originalLine?: number; originalColumn?: number }
    | undefined;
  if (entry?.originalSource && entry.originalLine !== undefined) {
    const source = entry.originalSource.startsWith("file://") ? fileURLToPath(entry.originalSource) : entry.originalSource;
    return { file: source, line: entry.originalLine + 1, column: (entry.originalColumn ?? 0) + 1 };
  }
  return { file: moduleAt(bundle.modules, line) ?? path, line, column };
}

function moduleAt(modules: [number, string][], line: number): string | undefined {
  let file: string | undefined;
  for (const [start, path] of modules) {
    if (start > line) break;
    file = path;
  }
  return file;
}

/** The first frame of a stack that is the user's code, mapped to the user's file. */
export function userLocation(stack: string | undefined): CallerLocation | undefined {
  for (const frame of stack?.split("\n").slice(1) ?? []) {
    const m = /\(?((?:file:\/\/)?\/[^()\s]+):(\d+):(\d+)\)?\s*$/.exec(frame.trim());
    if (!m) continue;
    const at = originalPosition(decodeURIComponent(m[1]!), Number(m[2]), Number(m[3]));
    if (OWN_FILE.test(at.file) || /[\\/]node_modules[\\/]/.test(at.file)) continue;
    return at;
  }
  return undefined;
}

/** "file:line:col", relative to the working directory when inside it. */
export function formatLocation(at: CallerLocation | undefined): DefinitionSite {
  if (!at) return undefined;
  const rel = relative(process.cwd(), at.file);
  return `${rel.startsWith("..") ? at.file : rel}:${at.line}:${at.column}`;
}

/** The user's call site, formatted on first use. */
export function captureSite(): SiteRef {
  const holder = new Error();
  let site: DefinitionSite | null = null;
  return () => (site === null ? (site = formatLocation(userLocation(holder.stack))) : site);
}

/** The directory of the user's calling file, against which relative paths are resolved. */
export function callerDir(): string {
  const fast = callerFileFromBundle();
  if (fast) return dirname(fast);
  const at = userLocation(new Error().stack);
  return at && at.file.startsWith("/") ? dirname(at.file) : process.cwd();
}

/** The calling file from raw call sites and the bundle's module starts: no source map needed. */
function callerFileFromBundle(): string | undefined {
  const bundles = registry();
  if (!bundles) return undefined;
  const saved = Error.prepareStackTrace;
  let sites: NodeJS.CallSite[] = [];
  Error.prepareStackTrace = (_error, callSites) => callSites;
  try {
    sites = new Error().stack as unknown as NodeJS.CallSite[];
  } finally {
    Error.prepareStackTrace = saved;
  }
  for (const site of Array.isArray(sites) ? sites : []) {
    const bundle = bundles.get(site.getFileName() ?? "");
    if (!bundle) continue;
    const file = moduleAt(bundle.modules, site.getLineNumber() ?? 0);
    if (file && !OWN_FILE.test(file)) return file;
  }
  return undefined;
}

/** Freezes a definition value with a `definedAt` that is formatted when first read. */
export function withSite<T extends object>(value: T, site: SiteRef): T & { readonly definedAt: DefinitionSite } {
  Object.defineProperty(value, "definedAt", { get: site, enumerable: true });
  return Object.freeze(value) as T & { readonly definedAt: DefinitionSite };
}
