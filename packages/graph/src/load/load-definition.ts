// Owns loading a castle.ts: bundling it and its relative imports with esbuild (with "castle"
// resolved to the running Castle's API), caching the bundle by the content of its inputs, and
// loading it — with source maps kept, so every error points at the user's file and line. The
// bundle is CommonJS, which a cached `castle run` loads without starting Node's ES module
// loader (~5 ms); a definition that needs ES modules (top-level await, import.meta beyond its
// url) is bundled as one. Every load records what the definition read (record/), so a later run
// can tell, without evaluating it, that it would give the same system.

import { readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { createRequire } from "node:module";
import { setImmediate } from "node:timers";
import { pathToFileURL } from "node:url";
import { CastleError, isCastleError, messageOf } from "@castle/errors";
import { writeFileAtomic } from "@castle/cache/store";
import { API_MODULE, formatLocation, registerBundle, userLocation } from "../define/site";
import { isSystemValue } from "../define/system";
import { sha256Hex } from "../hash/canonical";
import type { System } from "../types";
import { castleApiPath } from "./api-path";
import { bundleReads } from "./record/bundle-inputs";
import { DefinitionRecorder, RECORDER, type DefinitionReads } from "./record/definition-reads";
import { CJS_BANNER, ESM_BANNER, compiledImpurity, isRecordingInput, recordingPlugin } from "./record/esbuild-recording";
import { trapGlobals } from "./record/trapped-globals";

export interface LoadOptions {
  /** Directory that holds the definition, or the definition file itself. */
  path: string;
  /** Where compiled definitions are cached (e.g. store.dir("defs")). */
  cacheDir: string;
  /** Definition API module to resolve "castle" to. Default: the running Castle's. */
  apiPath?: string;
}

export interface LoadedDefinition {
  system: System;
  /** Absolute path of the castle.ts that was loaded. */
  file: string;
  /** True when the compiled bundle came from the cache (no esbuild run). */
  cached: boolean;
  /** What its evaluation depended on, and whether it can be replayed from that (see record/). */
  reads: DefinitionReads;
}

/** Bumped whenever compiled bundles change shape (2: built-ins through the recorder). */
const INDEX_FORMAT = 3;

interface BundleIndex {
  format: number;
  api: string;
  bundle: string;
  inputs: { path: string; size: number; mtimeMs: number; sha256: string }[];
  /** Every file esbuild read to make the bundle, packages included (what a replay checks). */
  resolution: string[];
  /** Why the compiled code is impure whatever it reads (a dynamic import()…). */
  impure: string[];
  /** Where each input's code starts in the bundle: [line, absolute path]. */
  modules: [number, string][];
  /** The bundle's source map, beside it. */
  sourceMap: string;
}

/** Loads the system a castle.ts default-exports. */
export async function loadDefinition(options: LoadOptions): Promise<LoadedDefinition> {
  const file = definitionFile(options.path);
  const apiPath = options.apiPath ?? castleApiPath();
  const apiStamp = stamp(apiPath);
  const indexFile = join(options.cacheDir, `${sha256Hex(file).slice(0, 32)}.json`);
  let found = reuseBundle(indexFile, apiStamp, options.cacheDir);
  const cached = found !== undefined;
  if (!found) found = await compile(file, apiPath, apiStamp, indexFile, options.cacheDir);
  const { bundle, modules, sourceMap } = found;
  const compiledReads = bundleReads(file, found.resolution);
  // Positions are mapped back to the user's files by Castle itself, on demand (see define/site.ts).
  const isModule = bundle.endsWith(".mjs");
  // Stack frames name an ES module by its URL and a CommonJS file by its path.
  registerBundle(isModule ? pathToFileURL(bundle).href : bundle, { modules, sourceMap });
  let exports: { default?: unknown };
  // The real environment and cwd, captured before the evaluation replaces the global process.
  const recorder = new DefinitionRecorder(process.env, process.cwd.bind(process));
  try {
    exports = await evaluate(bundle, isModule, recorder);
  } catch (error) {
    // The definition API's own errors already name their code, file and line: pass them on as
    // they are (wrapping them repeated the location three times and lost the code).
    if (isCastleError(error)) throw error;
    const at = userLocation(error instanceof Error ? error.stack : undefined);
    throw new CastleError("CASTLE_DEFINITION_ERROR", `${at ? `${formatLocation(at)}: ` : `${file}: `}${messageOf(error)}`, {
      cause: error,
      data: { file },
    });
  }
  if (!isSystemValue(exports.default)) {
    throw new CastleError("CASTLE_DEFINITION_EXPORT", `${file} must \`export default system({ ... })\``, {
      data: { file },
      hint: 'import { system } from "castle" and default-export the result',
    });
  }
  const reads = recorder.reads();
  reads.impure.push(...found.impure);
  reads.files.unshift(...compiledReads);
  return { system: exports.default, file, cached, reads };
}

/** ES module bundles this process has evaluated: a second import() would not evaluate again. */
const importedModules = new Set<string>();

/** Evaluates the bundle with the recorder watching, until the promise jobs it queued have run. */
async function evaluate(bundle: string, isModule: boolean, recorder: DefinitionRecorder): Promise<{ default?: unknown }> {
  (globalThis as { [RECORDER]?: DefinitionRecorder })[RECORDER] = recorder;
  const restore = trapGlobals(recorder);
  try {
    return await recorder.run(() => evaluateBundle(bundle, isModule, recorder));
  } finally {
    restore();
  }
}

async function evaluateBundle(bundle: string, isModule: boolean, recorder: DefinitionRecorder): Promise<{ default?: unknown }> {
  let exports: { default?: unknown };
  if (isModule) {
    const url = pathToFileURL(bundle).href;
    if (importedModules.has(url)) recorder.impure("was evaluated earlier in this process (its reads are not known)");
    importedModules.add(url);
    exports = (await import(url)) as { default?: unknown };
  } else {
    const require = createRequire(import.meta.url);
    // Loaded again in one process (tests), it must run again to be recorded again.
    delete require.cache[bundle];
    exports = require(bundle) as { default?: unknown };
  }
  await new Promise((resolveTick) => setImmediate(resolveTick));
  return exports;
}

function definitionFile(path: string): string {
  const abs = resolve(path);
  let stat;
  try {
    stat = statSync(abs);
  } catch {
    throw new CastleError("CASTLE_DEFINITION_MISSING", `${abs} does not exist`, { data: { path: abs } });
  }
  const file = stat.isDirectory() ? join(abs, "castle.ts") : abs;
  try {
    statSync(file);
  } catch {
    throw new CastleError("CASTLE_DEFINITION_MISSING", `no castle.ts in ${abs}`, {
      data: { path: abs },
      hint: "a definition directory holds a castle.ts that default-exports a system",
    });
  }
  return file;
}

function stamp(path: string): string {
  const st = statSync(path);
  return `${path}:${st.size}:${st.mtimeMs}`;
}

/** The cached bundle, if every input still has the size and content it had when compiled. */
type CompiledBundle = { bundle: string; modules: [number, string][]; sourceMap: string; resolution: string[]; impure: string[] };

function reuseBundle(indexFile: string, apiStamp: string, cacheDir: string): CompiledBundle | undefined {
  let index: BundleIndex;
  try {
    index = JSON.parse(readFileSync(indexFile, "utf8")) as BundleIndex;
  } catch {
    return undefined;
  }
  if (index.format !== INDEX_FORMAT || index.api !== apiStamp || !Array.isArray(index.modules) || typeof index.sourceMap !== "string") return undefined;
  for (const input of index.inputs) {
    try {
      const st = statSync(input.path);
      if (st.size !== input.size) return undefined;
      if (st.mtimeMs !== input.mtimeMs && sha256Hex(readFileSync(input.path, "latin1")) !== input.sha256) return undefined;
    } catch {
      return undefined;
    }
  }
  const bundle = join(cacheDir, index.bundle);
  try {
    // Bundles are named by their content: one damaged on disk (cut short, edited) is compiled
    // again rather than failing every run with a syntax error.
    if (`${sha256Hex(readFileSync(bundle, "utf8")).slice(0, 32)}${index.bundle.slice(-4)}` !== index.bundle) return undefined;
  } catch {
    return undefined;
  }
  return { bundle, modules: index.modules, sourceMap: join(cacheDir, index.sourceMap), resolution: index.resolution, impure: index.impure };
}

async function compile(
  file: string, apiPath: string, apiStamp: string, indexFile: string, cacheDir: string,
): Promise<CompiledBundle> {
  const imported = (await import("esbuild")) as typeof import("esbuild") & { default?: typeof import("esbuild") };
  const esbuild = imported.default ?? imported;
  const build = (format: "cjs" | "esm") => esbuild.build({
    entryPoints: [file],
    bundle: true,
    format,
    platform: "node",
    target: "node20",
    write: false,
    metafile: true,
    sourcemap: "external",
    sourcesContent: false,
    outfile: join(cacheDir, `definition.${format === "esm" ? "mjs" : "cjs"}`),
    // The metafile names inputs relative to this (esbuild's service keeps the cwd it started in).
    absWorkingDir: dirname(file),
    logLevel: "silent",
    // "castle" always means the running Castle; a definition may import packages of its own.
    alias: { castle: apiPath },
    // Node's built-ins become views that record what the definition reads (record/).
    plugins: [recordingPlugin(apiPath)],
    ...(format === "esm"
      ? { banner: { js: ESM_BANNER } }
      : {
        banner: { js: CJS_BANNER },
        define: { "import.meta.url": "__castleImportMetaUrl", "import.meta.dirname": "__dirname", "import.meta.filename": "__filename" },
      }),
  });
  let result;
  try {
    result = await build("cjs").catch((error: unknown) => {
      if (needsModule((error as { errors?: { text: string }[] }).errors)) return build("esm");
      throw error;
    });
    if (needsModule(result.warnings)) result = await build("esm");
  } catch (error) {
    const failure = error as { errors?: { text: string; location?: { file: string; line: number; column: number } | null }[] };
    const first = failure.errors?.[0];
    const where = first?.location ? `${resolve(dirname(file), first.location.file)}:${first.location.line}:${first.location.column + 1}: ` : `${file}: `;
    throw new CastleError("CASTLE_DEFINITION_SYNTAX", `${where}${first?.text ?? messageOf(error)}`, {
      cause: error,
      data: { file, errors: failure.errors?.map((e) => e.text) },
    });
  }
  const code = result.outputFiles.find((f) => /\.[cm]js$/.test(f.path))!;
  const map = result.outputFiles.find((f) => f.path.endsWith(".map"))!;
  // No sourceMappingURL: Node must not decode the map on every load; Castle maps on demand.
  const output = code.text.replace(/\n\/\/# sourceMappingURL=.*\n?$/, "\n");
  const bundleName = `${sha256Hex(output).slice(0, 32)}${code.path.slice(-4)}`;
  const bundle = join(cacheDir, bundleName);
  const sourceMap = `${bundleName}.map`;
  writeFileAtomic(join(cacheDir, sourceMap), absoluteSources(map.text, code.path), { durable: false });
  writeFileAtomic(bundle, output);
  const inputNames = Object.keys(result.metafile.inputs).filter((p) => !isRecordingInput(p));
  // Castle's API, bundled in, is named as such: no frame of it passes for the user's file
  // (site.ts), wherever Castle's dist/ is and whatever its directory is called.
  const modules = moduleStarts(output, inputNames, dirname(file)).map(([line, path]): [number, string] => [line, path === apiPath ? API_MODULE : path]);
  const resolution = inputNames.map((p) => (isAbsolute(p) ? p : resolve(dirname(file), p)));
  const impure = compiledImpurity(output);
  const inputs = resolution
    .filter((p) => p !== apiPath && !p.includes("/node_modules/"))
    .map((p) => {
      const st = statSync(p);
      return { path: p, size: st.size, mtimeMs: st.mtimeMs, sha256: sha256Hex(readFileSync(p, "latin1")) };
    });
  const index: BundleIndex = { format: INDEX_FORMAT, api: apiStamp, bundle: bundleName, inputs, resolution, impure, modules, sourceMap };
  writeFileAtomic(indexFile, JSON.stringify(index));
  return { bundle, modules, sourceMap: join(cacheDir, sourceMap), resolution, impure };
}

/** Whether esbuild says the definition cannot be CommonJS (top-level await, import.meta). */
function needsModule(messages: { text: string }[] | undefined): boolean {
  return (messages ?? []).some((m) => /top-level await|"import\.meta"/i.test(m.text));
}

/** The map with absolute source paths (esbuild writes them relative to the output file). */
function absoluteSources(mapText: string, outfile: string): string {
  const map = JSON.parse(mapText) as { sources: string[] };
  map.sources = map.sources.map((s) => resolve(dirname(outfile), s));
  return JSON.stringify(map);
}

/** esbuild opens each module's code with a "// <input path>" line: where each input starts. */
function moduleStarts(output: string, inputs: string[], base: string): [number, string][] {
  const known = new Set(inputs);
  const starts: [number, string][] = [];
  const lines = output.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith("// ") && known.has(line.slice(3))) starts.push([i + 1, resolve(base, line.slice(3))]);
  }
  return starts;
}
