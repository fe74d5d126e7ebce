// Owns `layer()`, `layer.import()` and `layer.merge()`: the three kinds of layer a definition
// declares. They only check and record options; nothing is built or hashed here.

import { parseSize } from "@castle/sandbox";
import { LAYER_BRAND, isLayer, isSource, type BuildLayer, type BuildLimits, type ImportLayer, type LayerRef, type MergeLayer, type Mountable, type Source } from "../types";
import { checkKnownOptions, checkMountPath, checkName, checkStringMap, checkStrings, optionNames } from "./checks";
import { DefinitionError } from "./errors";
import { captureSite, withSite } from "./site";
import type { SiteRef } from "./site";

export interface LayerOptions {
  /** Unique name in the system; used in logs, overrides and `castle why`. */
  name: string;
  /** Shell script that builds the layer; everything it writes outside mounts is the output. */
  script: string;
  /** Layers composed beneath the build root while building, not part of the result. Default []. */
  buildDeps?: LayerRef[];
  /** Layers composed beneath this one while building and whenever the system runs. Default []. */
  runDeps?: LayerRef[];
  /** Shorthand for layers that are both build and run dependencies. Default []. */
  deps?: LayerRef[];
  /** Sources or layers mounted at absolute paths during the build, copy-on-write. Default {}. */
  mounts?: Record<string, Mountable>;
  /** Environment for the script, over Castle's defaults. Default {}. */
  env?: Record<string, string>;
  /** Working directory of the script. Default "/". */
  cwd?: string;
  /** "none" (default, only loopback) or "host" (e.g. for a fetch step). */
  network?: "none" | "host";
  /** Persistent writable dirs kept between builds of this layer, by path → cache id (not hashed:
   * a build must give the same output with or without them, as with BuildKit cache mounts). Default {}. */
  caches?: Record<string, string>;
  /** Command that runs the script, which is appended as its last argument. Default ["/bin/sh", "-euc"]. */
  shell?: string[];
  /**
   * Limits of this layer's build, over Castle's defaults (README, "Build limits"): `pids`
   * (processes and threads at once; default 2048), `memory` (bytes or "4G"; default 3/4 of RAM,
   * where a cgroup can hold it), `tmp` (size of /tmp, bytes or "2G"; default 1G). "none" lifts a
   * limit; the run's --build-pids, --build-memory and --build-tmp override these. Not part of the
   * layer's key: a build must give the same output under any limit it fits in. Default {}.
   */
  limits?: { pids?: number | "none"; memory?: number | string; tmp?: number | string };
}

const LAYER_OPTIONS = optionNames<LayerOptions>()(["name", "script", "buildDeps", "runDeps", "deps", "mounts", "env", "cwd", "network", "caches", "shell", "limits"]);

/**
 * Declares a layer built by a shell script in a sandbox. Its output is what the script wrote
 * into the root (deletions become whiteouts); writes into mounts and /tmp are discarded.
 *
 * @example
 * const base = layer.import({ name: "base", from: source.local("./rootfs") });
 * const hello = layer({
 *   name: "hello",
 *   runDeps: [base],
 *   script: "mkdir -p /etc && echo hello > /etc/motd",
 * });
 */
export function layer(options: LayerOptions): BuildLayer {
  const site = captureSite();
  if (typeof options !== "object" || options === null) {
    throw new DefinitionError("layer() takes an options object", site);
  }
  checkKnownOptions(options, LAYER_OPTIONS, `layer(${describeName(options.name)})`, site);
  const name = checkName(options.name, "layer", site);
  if (typeof options.script !== "string" || options.script.trim() === "") {
    throw new DefinitionError(`layer ${name}: script must be a non-empty string`, site);
  }
  const deps = refs(options.deps, `layer ${name}: deps`, site);
  const caches = checkStringMap(options.caches, `layer ${name}: caches`, site);
  const checkedCaches: Record<string, string> = {};
  for (const [path, id] of Object.entries(caches)) {
    checkedCaches[checkMountPath(path, `layer ${name}: cache path`, site)] = checkName(id, "cache", site);
  }
  const network = options.network ?? "none";
  if (network !== "none" && network !== "host") {
    throw new DefinitionError(`layer ${name}: network must be "none" or "host"`, site);
  }
  const shell = options.shell === undefined ? ["/bin/sh", "-euc"] : checkStrings(options.shell, `layer ${name}: shell`, site);
  if (shell.length === 0) throw new DefinitionError(`layer ${name}: shell must not be empty`, site);
  return withSite({
    [LAYER_BRAND]: true as const,
    kind: "build" as const,
    name,
    buildDeps: [...deps, ...refs(options.buildDeps, `layer ${name}: buildDeps`, site)],
    runDeps: [...deps, ...refs(options.runDeps, `layer ${name}: runDeps`, site)],
    mounts: mounts(options.mounts, name, site),
    build: {
      script: options.script,
      env: checkStringMap(options.env, `layer ${name}: env`, site),
      cwd: options.cwd === undefined ? "/" : cwdOf(options.cwd, name, site),
      network,
      caches: checkedCaches,
      shell,
      limits: checkLimits(options.limits, name, site),
    },
  }, site);
}

export interface ImportOptions {
  name: string;
  /** The source whose files are this layer's output: a directory, a tarball, a git tree... */
  from: Source;
  /** Layers composed beneath this one at run time. Default []. */
  runDeps?: LayerRef[];
}

const IMPORT_OPTIONS = optionNames<ImportOptions>()(["name", "from", "runDeps"]);

/**
 * Declares a layer whose output is a source's files, as they are: a base rootfs from a tarball
 * or a directory, prebuilt files, a git checkout.
 *
 * @example
 * const base = layer.import({ name: "base", from: source.local("./rootfs") });
 */
function importLayer(options: ImportOptions): ImportLayer {
  const site = captureSite();
  checkKnownOptions(options, IMPORT_OPTIONS, `layer.import(${describeName(options?.name)})`, site);
  const name = checkName(options?.name, "layer", site);
  if (!isSource(options.from)) {
    throw new DefinitionError(`layer ${name}: from must be a source (source.local, source.http, ...)`, site);
  }
  return withSite({
    [LAYER_BRAND]: true as const,
    kind: "import" as const,
    name,
    buildDeps: [],
    runDeps: refs(options.runDeps, `layer ${name}: runDeps`, site),
    mounts: {},
    from: options.from,
  }, site);
}

export interface MergeOptions {
  name: string;
  /** Layers composed in order (later ones win where paths collide). */
  layers: LayerRef[];
}

const MERGE_OPTIONS = optionNames<MergeOptions>()(["name", "layers"]);

/**
 * Declares a layer that is the composition of others: one name for a group of layers. Later
 * layers take precedence where paths collide; a symlink is replaced, never followed.
 *
 * @example
 * const userland = layer.merge({ name: "userland", layers: [busybox, zlib] });
 */
function mergeLayer(options: MergeOptions): MergeLayer {
  const site = captureSite();
  checkKnownOptions(options, MERGE_OPTIONS, `layer.merge(${describeName(options?.name)})`, site);
  const name = checkName(options?.name, "layer", site);
  const layers = refs(options.layers, `layer ${name}: layers`, site);
  if (layers.length === 0) throw new DefinitionError(`layer ${name}: layers must not be empty`, site);
  return withSite({
    [LAYER_BRAND]: true as const,
    kind: "merge" as const,
    name,
    buildDeps: [],
    runDeps: layers,
    mounts: {},
  }, site);
}

layer.import = importLayer;
layer.merge = mergeLayer;

/** How an error names the call before its name is checked: `"musl"`, or nothing. */
export function describeName(name: unknown): string {
  return typeof name === "string" ? JSON.stringify(name) : "";
}

function refs(value: unknown, what: string, site: SiteRef): LayerRef[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new DefinitionError(`${what} must be an array of layers`, site);
  return value.map((ref, i) => {
    if (typeof ref === "string" || isLayer(ref)) return ref;
    throw new DefinitionError(
      `${what}[${i}] is ${ref === undefined ? "undefined (a missing dependency? is it declared before use?)" : "not a layer"}`,
      site,
    );
  });
}

function mounts(value: unknown, name: string, site: SiteRef): Record<string, Mountable> {
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null) {
    throw new DefinitionError(`layer ${name}: mounts must map paths to sources or layers`, site);
  }
  const out: Record<string, Mountable> = {};
  for (const [path, target] of Object.entries(value)) {
    const normal = checkMountPath(path, `layer ${name}: mount path`, site);
    if (!isSource(target) && !isLayer(target)) {
      throw new DefinitionError(`layer ${name}: mount ${path} must be a source or a layer`, site);
    }
    if (out[normal]) throw new DefinitionError(`layer ${name}: mount ${normal} is given twice`, site);
    out[normal] = target;
  }
  return out;
}

function checkLimits(value: unknown, name: string, site: SiteRef): BuildLimits {
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new DefinitionError(`layer ${name}: limits must be an object like { pids: 4096, memory: "8G", tmp: "2G" }`, site);
  }
  const out: BuildLimits = {};
  for (const [key, limit] of Object.entries(value as Record<string, unknown>)) {
    if (key !== "pids" && key !== "memory" && key !== "tmp") {
      throw new DefinitionError(`layer ${name}: limits.${key} is not a limit (pids, memory or tmp)`, site);
    }
    if (limit === "none") {
      out[key] = "none";
    } else if (key === "pids") {
      if (!Number.isSafeInteger(limit) || (limit as number) < 1) throw new DefinitionError(`layer ${name}: limits.pids must be a positive integer or "none"`, site);
      out.pids = limit as number;
    } else {
      const bytes = typeof limit === "string" ? parseSize(limit) : Number.isSafeInteger(limit) ? (limit as number) : undefined;
      if (bytes === undefined || bytes < 1) throw new DefinitionError(`layer ${name}: limits.${key} must be a size like "2G" (or bytes), or "none"`, site);
      out[key] = bytes;
    }
  }
  return out;
}

function cwdOf(cwd: string, name: string, site: SiteRef): string {
  if (cwd === "/") return cwd;
  return checkMountPath(cwd, `layer ${name}: cwd`, site);
}

