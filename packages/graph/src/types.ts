// Owns the nouns of the graph: what a definition declares (Layer, Source, System — plain data,
// branded so that copies of the API from different bundles agree), and what the scheduler
// reports (BuildEvent). Keys and digests come from @castle/cache's types.

import type { KeyRecord, LayerKey, OutputDigest } from "@castle/cache";

export const LAYER_BRAND = Symbol.for("castle.layer");
export const SOURCE_BRAND = Symbol.for("castle.source");
export const SYSTEM_BRAND = Symbol.for("castle.system");

/** Where in the user's definition something was declared, e.g. "castle.ts:12:15". */
export type DefinitionSite = string | undefined;

/** A layer, or the name of one declared elsewhere in the same system. */
export type LayerRef = Layer | string;

/** What can be mounted at a path while a layer builds. */
export type Mountable = Source | Layer;

export interface BuildOptions {
  /** Shell script run with `/bin/sh -euc` inside the build root. */
  script: string;
  /** Extra environment (merged over Castle's defaults: PATH, HOME, TMPDIR, MAKEFLAGS...). */
  env: Record<string, string>;
  /** Working directory of the script. */
  cwd: string;
  /** Network during the build: "none" (only lo) or "host". */
  network: "none" | "host";
  /** Persistent, writable directories shared by successive builds of this layer (not in the key). */
  caches: Record<string, string>;
  /** Command that runs the script; the script is appended as the last argument. */
  shell: string[];
  /** The build's own limits over Castle's defaults (not in the key, like job counts). */
  limits: BuildLimits;
}

/** Limits of a build's sandbox: a number (bytes for memory and tmp), or "none" for no limit. */
export interface BuildLimits {
  /** Processes and threads at once. */
  pids?: number | "none";
  /** Memory of the whole build, in bytes. */
  memory?: number | "none";
  /** Size of the build's /tmp, in bytes. */
  tmp?: number | "none";
}

interface LayerBase {
  readonly [LAYER_BRAND]: true;
  readonly name: string;
  /** Mounted (composed, read-only) beneath the build root while building; not in the result. */
  readonly buildDeps: readonly LayerRef[];
  /** Composed beneath this layer in the build root and whenever the system runs. */
  readonly runDeps: readonly LayerRef[];
  /** Sources or layers mounted at absolute paths while building (copy-on-write, discarded). */
  readonly mounts: Readonly<Record<string, Mountable>>;
  readonly definedAt: DefinitionSite;
}

/** A layer built by a script in a sandbox: its output is what the script wrote. */
export interface BuildLayer extends LayerBase {
  readonly kind: "build";
  readonly build: BuildOptions;
}

/** A layer whose output is a source's files, as they are. */
export interface ImportLayer extends LayerBase {
  readonly kind: "import";
  readonly from: Source;
}

/** One name for a group of layers: no output of its own, only its run dependencies. */
export interface MergeLayer extends LayerBase {
  readonly kind: "merge";
}

export type Layer = BuildLayer | ImportLayer | MergeLayer;

/** True for a layer made by any copy of the definition API (bundles may hold more than one). */
export function isLayer(value: unknown): value is Layer {
  return typeof value === "object" && value !== null && (value as Layer)[LAYER_BRAND] === true;
}

/** True for a source made by any copy of the definition API. */
export function isSource(value: unknown): value is Source {
  return typeof value === "object" && value !== null && (value as Source)[SOURCE_BRAND] === true;
}

export type SourceSpec =
  | { type: "http"; url: string; sha256: string; mirrors: string[]; extract: boolean; strip: number }
  | { type: "git"; url: string; commit: string; ref?: string; subdir: string }
  | { type: "local"; dir: string; ignore: string[] }
  | { type: "inline"; files: Record<string, { content: string; mode: number }> };

export interface Source {
  readonly [SOURCE_BRAND]: true;
  /** Name used for overrides: CASTLE_OVERRIDE_<name, lower-cased, "-" → "_">. */
  readonly name: string;
  readonly spec: SourceSpec;
  readonly definedAt: DefinitionSite;
}

export interface System {
  readonly [SYSTEM_BRAND]: true;
  readonly name: string;
  /** Layers composed (with their run dependencies) into the system's root, bottom first. */
  readonly layers: readonly LayerRef[];
  /** Command run by `castle run` when none is given. */
  readonly entrypoint: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly hostname: string;
  /** Whether `castle run` mounts Castle, the definition and the edited sources into the system. */
  readonly castle: boolean;
  /** Sources whose files `castle run` puts at ~/src/<name> inside, used by every build there. */
  readonly edit: readonly string[];
  readonly definedAt: DefinitionSite;
}

/** Why a layer is being built, compared with the last build of a layer with the same name. */
export interface BuildReason {
  /** "new": never built under this name; "changed": inputs differ; "forced". */
  kind: "new" | "changed" | "forced";
  /** Human-readable differences, e.g. "dependency musl: output 1a2b… → 9f8e…". */
  changes: string[];
}

/**
 * What a source being made ready is doing: downloading a file, cloning a git repository,
 * unpacking an archive (or writing a checkout), copying a local directory, storing the result;
 * "done" once it is in the store.
 */
export type SourcePhase = "download" | "clone" | "unpack" | "copy" | "store" | "done";

/** Lines of a failed build's log that its `failed` event carries (the end of the log). */
export const LOG_TAIL_LINES = 30;

/**
 * What the scheduler reports; the CLI's reporters reduce these into their view. Each event
 * carries what a view needs to draw it (a view never looks anything up).
 */
export type BuildEvent =
  /** Once, before anything else: how many builds may run at once. */
  | { type: "started"; jobs: number }
  /**
   * Once per layer, dependencies first: its kind, the layers it waits for (build and run
   * dependencies and mounted layers), and how long its last recorded build took, if any.
   */
  | { type: "queued"; layer: string; kind: Layer["kind"]; waitsFor: string[]; expectedMs: number | undefined }
  /**
   * A source being fetched or unpacked (never one already in the store), as bytes arrive; its
   * last event has phase "done". The definition's own repository is reported this way too.
   */
  | { type: "source"; source: string; phase: SourcePhase; bytesDone: number; bytesTotal: number | undefined }
  /** A layer whose dependencies are ready, waiting for one of the `jobs` build slots. */
  | { type: "waiting"; layer: string; for: "slot" }
  | { type: "cache-hit"; layer: string; key: LayerKey; digest: OutputDigest }
  | { type: "pulling"; layer: string; key: LayerKey; bytesDone: number; bytesTotal: number }
  | { type: "building"; layer: string; key: LayerKey; reason: BuildReason; logPath: string; jobs: number }
  | { type: "log"; layer: string; line: string }
  /** A layer with an output; merge layers have none and finish as `merged`. */
  | { type: "done"; layer: string; key: LayerKey; record: KeyRecord; origin: "built" | "pulled" | "local" }
  | { type: "merged"; layer: string }
  | { type: "pushed"; layer: string; key: LayerKey; uploadedBytes: number }
  | { type: "warning"; layer?: string; message: string; code?: string }
  /** Something the user should know that is not a problem (e.g. who signed what was pulled). */
  | { type: "note"; message: string }
  /** `logTail` holds at most LOG_TAIL_LINES lines. */
  | { type: "failed"; layer: string; message: string; code?: string; logPath?: string; logTail: string[] }
  | { type: "skipped"; layer: string; because: string }
  /** The build was cancelled (a signal, e.g. Ctrl-C): what still runs is stopped, nothing partial kept. */
  | { type: "cancelled"; signal: string | undefined }
  | { type: "finished"; ok: boolean; stats: BuildStats };

export interface BuildStats {
  layers: number;
  built: number;
  pulled: number;
  cached: number;
  failed: number;
  pushedBytes: number;
  pulledBytes: number;
  wallMs: number;
  /** Sum of recorded build times of the layers that did not have to be built. */
  savedMs: number;
}
