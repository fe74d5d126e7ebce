// Owns starting the bundled `castle` command fast (dist/castle.cjs): it runs the command's core
// (dist/core.cjs, one CommonJS file) from a V8 code cache, so a cached `castle run` does not
// parse and compile Castle's code again on every start. Node 20 has no compile cache for ES
// modules, and a plain require() never uses one. The cache is made by the first run of each
// command, after it ran (so it holds the functions that command needed), and kept in the
// user's store (never a shared directory: a cache is code). Node 20 also loses the callback that
// import() needs in code compiled from a cache, so the bundler routes the core's import() calls
// through `importModule` below, which runs here, compiled as usual. The launcher is CommonJS as
// well: a cached run that loads a CommonJS definition never starts Node's ES module loader.

import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Script } from "node:vm";

declare const CASTLE_CORE_ID: string;

/** Commands whose start-up matters get a cache of their own; the rest share one. */
const OWN_CACHE = new Set(["run", "build", "shell", "exec", "why", "ps"]);

const corePath = join(dirname(fileURLToPath(import.meta.url)), "core.cjs");
const importModule = (specifier: string): Promise<unknown> => import(specifier);

function codeCacheFile(command: string | undefined): string {
  const env = process.env;
  // The store's root, found as defaultStoreRoot() finds it (that module is in the core).
  const store = env.CASTLE_CACHE_DIR || join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), ".cache"), "castle");
  const name = command && OWN_CACHE.has(command) ? command : "other";
  return join(store, "code", `${CASTLE_CORE_ID.slice(0, 16)}-${process.version}-${process.arch}-${name}.v8`);
}

/** Removes caches of other builds of Castle (each upgrade would otherwise leave its own behind). */
function removeOtherBuilds(dir: string): void {
  for (const name of readdirSync(dir)) {
    if (name.endsWith(".v8") && !name.startsWith(CASTLE_CORE_ID.slice(0, 16))) rmSync(join(dir, name), { force: true });
  }
}

function readIfPresent(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}

/** Writes the cache atomically; a store that cannot be written only means no cache. */
function saveCodeCache(script: Script, file: string): void {
  try {
    mkdirSync(dirname(file), { recursive: true });
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, script.createCachedData());
    renameSync(temp, file);
    removeOtherBuilds(dirname(file));
  } catch {
    // read-only or full: the next start compiles again
  }
}

const cacheFile = codeCacheFile(process.argv[2]);
const cachedData = readIfPresent(cacheFile);
const wrapped = `(function (exports, require, module, __filename, __dirname, __castleImport) {${readFileSync(corePath, "utf8")}\n})`;
const script = new Script(wrapped, { filename: corePath, ...(cachedData ? { cachedData } : {}) });
// Made after the run, so it holds every function the command compiled, not only the top level.
if (!cachedData || script.cachedDataRejected) process.once("exit", () => saveCodeCache(script, cacheFile));
const core = { exports: {} as { cli(): void } };
(script.runInThisContext() as (...args: unknown[]) => void)(
  core.exports, createRequire(corePath), core, corePath, dirname(corePath), importModule,
);
core.exports.cli();
