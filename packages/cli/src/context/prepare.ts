// Owns the pipeline every system command shares: find the definition, load it, validate its
// graph, check overrides against its sources, open remote caches, and build what is missing
// with progress shown — returning the composed root's layers. A build's reporter starts with
// the pipeline (deferred: it draws once there is work, or once the run lasts), so fetching the
// definition shows too.

import { existsSync, readFileSync } from "node:fs";
import { pinnedClaim, type CorruptTree, type LayerPin, type LocalStore, type Remote, type StoreClaim } from "@castle/cache/store";
import { CastleError } from "@castle/errors";
import {
  buildGraph, buildSystem, didYouMean, loadDefinition, normaliseSourceName, parseOverrides, type BuildOutcome, type FileRead,
  type LayerGraph, type LoadedDefinition,
} from "@castle/graph";
import { spawn } from "@castle/sandbox";
import { editOverrides } from "../inside/inside-info";
import { addToTotals } from "./cache-stats";
import { startBuildReporter, type BuildReporter } from "./build-reporter";
import { explainDiskFull } from "./disk-full";
import { definitionTarget, locateDefinition, type DefinitionLocation } from "./locate-definition";
import type { Config } from "../config/load-config";
import { type SystemFlags, sourceEnv } from "./options";
import { openCastleStore } from "./paths";

export interface PreparedSystem {
  store: LocalStore;
  location: DefinitionLocation;
  loaded: LoadedDefinition;
  graph: LayerGraph;
  overrides: Map<string, string>;
  flags: SystemFlags;
  /** For a build: its claim on the store against a prune, begun before the first look-up. */
  claim?: StoreClaim;
  /** What the build's walks of local sources stat'ed (for the fast path, see fastpath/). */
  localReads: FileRead[];
  /** For a build: where its progress goes (and its record), from the first step on. */
  reporter?: BuildReporter;
}

/** Finds, loads and checks a system; `forBuild` also begins the build's claim on the store. */
export async function prepareSystem(positionals: string[], flags: SystemFlags, command: string, forBuild = false): Promise<PreparedSystem> {
  const store = openCastleStore(flags.verify ? { verifyTrees: true, onCorruptTree: warnCorrupt } : {});
  // From before the first look-up to the root record, so a `cache prune` never removes a layer
  // this build has found or made but not yet recorded (see StoreClaim).
  const claim = forBuild ? claimStore(store) : undefined;
  const reporter = forBuild ? startBuildReporter(flags, command) : undefined;
  try {
    return await prepare(store, positionals, flags, command, claim, reporter);
  } catch (error) {
    await Promise.all([reporter?.close(), claim?.release()]);
    throw error;
  }
}

async function prepare(
  store: LocalStore, positionals: string[], flags: SystemFlags, command: string, claim: StoreClaim | undefined, reporter: BuildReporter | undefined,
): Promise<PreparedSystem> {
  const location = await locateDefinition(definitionTarget(positionals, command), store, {
    offline: flags.offline,
    ...(reporter ? { onProgress: (p) => reporter.onEvent({ type: "source", source: p.source, phase: p.phase, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal }) } : {}),
  });
  const loaded = await loadDefinition({ path: location.dir, cacheDir: store.dir("defs") });
  // A changed definition, or a forced rebuild, will most likely write: take the lock meanwhile.
  if (claim && (!loaded.cached || flags.rebuild.length > 0)) void claim.hold().catch(() => undefined);
  const graph = buildGraph(loaded.system);
  reporter?.identify({ system: graph.system.name, definition: location.label });
  // Sources edited with `castle edit` inside a system first; CASTLE_OVERRIDE_* and --override win.
  const overrides = new Map([...editedSources(graph), ...parseOverrides(process.env, flags.overrides)]);
  const known = new Map([...graph.sources.keys()].map((name) => [normaliseSourceName(name), name]));
  for (const name of overrides.keys()) {
    if (!known.has(name)) {
      const close = didYouMean(name, known.keys());
      throw new CastleError("CASTLE_OVERRIDE_UNKNOWN", `there is no source named "${name}" to override in system ${graph.system.name}${close}`, {
        data: { name, sources: [...known.values()] },
        hint: `its sources are: ${[...known.values()].join(", ") || "(none)"}`,
      });
    }
  }
  return { store, location, loaded, graph, overrides, flags, localReads: [], ...(claim ? { claim } : {}), ...(reporter ? { reporter } : {}) };
}

function warnCorrupt(tree: CorruptTree): void {
  const what = tree.name === undefined ? "a stored tree" : tree.name.startsWith("source:") ? `source ${tree.name.slice(7)}` : `layer ${tree.name}`;
  const done = tree.lower === undefined ? "removed" : `left in the outer store (${tree.lower}, read-only here) and not used`;
  process.stderr.write(`castle: warning: ${what}: its tree ${tree.digest} is corrupt (it digests to ${tree.actual}); ${done}, so it is made again\n`);
}

/** The edits recorded inside this system whose directories still exist (a removed one is noted). */
function editedSources(graph: LayerGraph): Map<string, string> {
  const edits = editOverrides(graph.sources.keys());
  for (const [name, dir] of edits) {
    if (existsSync(dir)) continue;
    process.stderr.write(`castle: warning: the edited source ${name} (${dir}) is gone: building with the pinned one (\`castle edit\` brings it back)\n`);
    edits.delete(name);
  }
  return edits;
}

function claimStore(store: LocalStore): StoreClaim {
  return store.claim(() => process.stderr.write("castle: waiting for a cache prune to finish…\n"));
}

/** Opens a remote cache only when one is configured (its code, and the AWS SDK, load only then). */
export async function openRemoteCache(url: string | undefined, store: LocalStore | undefined, config: Config, role: "import" | "export"): Promise<Remote | undefined> {
  if (!url) return undefined;
  const { openRemote, parsePublicKey, parseSigningKey } = await import("@castle/cache/remote");
  const trusted = config["cache.trustedKeys"];
  const signing = config["cache.signingKey"];
  return openRemote(url, {
    castleVersion: typeof CASTLE_VERSION === "string" ? CASTLE_VERSION : "dev",
    // Misses are remembered across runs for a minute, so an uncached layer costs one look-up.
    ...(store ? { negativeCacheDir: store.dir("remote") } : {}),
    trustedKeys: (trusted.value ?? []).map((line, i) => parsePublicKey(line, `trusted key ${i + 1} (from ${trusted.where ?? trusted.from})`)),
    ...(role === "export" && signing.value ? { signingKey: parseSigningKey(readKeyFile(signing.value), `the signing key ${signing.value}`) } : {}),
    insecureRegistries: config["cache.insecureRegistries"].value ?? [],
    transfer: {
      minBytesPerSecond: config["transfer.minBytesPerSecond"].value,
      windowMs: seconds(config["transfer.windowSeconds"].value),
      deadlineBaseMs: seconds(config["transfer.deadlineSeconds"].value),
      deadlineMsPerMB: seconds(config["transfer.deadlineSecondsPerMB"].value),
    },
  });
}

/** The remotes a build imports from, in order, and the one it exports to. */
export async function openRemoteCaches(flags: SystemFlags, store: LocalStore): Promise<{ imports: Remote[]; exportTo: Remote | undefined }> {
  const [imports, exportTo] = await Promise.all([
    Promise.all(flags.importCaches.map((url) => openRemoteCache(url, store, flags.config, "import") as Promise<Remote>)),
    openRemoteCache(flags.exportCache, store, flags.config, "export"),
  ]);
  return { imports, exportTo };
}

function readKeyFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new CastleError("CASTLE_KEY_INVALID", `cannot read the signing key ${path}: ${(error as Error).message}`, {
      cause: error,
      data: { path },
      hint: "make one with `castle cache keygen <name>`, or fix cache.signingKey / --signing-key",
    });
  }
}

function seconds(value: number | undefined): number | undefined {
  return value === undefined ? undefined : value * 1000;
}

declare const CASTLE_VERSION: string;

/** Signals that cancel a build. */
const CANCELLING: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

export interface BuildPreparedOptions {
  /** Pins the layers used (a run that will use them): written with each pass's outcome, before
   * the claim's check that no prune started, so a prune either sees the pin or makes the build
   * look again (see pinnedClaim). */
  pin?: LayerPin;
}

export async function buildPrepared(prepared: PreparedSystem, options: BuildPreparedOptions = {}): Promise<BuildOutcome> {
  const { flags, store } = prepared;
  const claim = prepared.claim ?? claimStore(store);
  const reporter = prepared.reporter ?? startBuildReporter(flags, "build");
  let remotes: { imports: Remote[]; exportTo: Remote | undefined };
  try {
    remotes = await openRemoteCaches(flags, store);
  } catch (error) {
    await Promise.all([reporter.close(), claim.release()]);
    throw error;
  }
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => abort.abort(signal);
  // A closed terminal (SIGHUP) cancels like Ctrl-C and `kill`: the same message and clean-up.
  for (const signal of CANCELLING) process.once(signal, onSignal);
  try {
    const outcome = await buildSystem(prepared.graph, {
      store,
      claim: options.pin ? pinnedClaim(claim, options.pin) : claim,
      sandbox: { spawn },
      onEvent: (event) => reporter.onEvent(event),
      sources: { overrides: prepared.overrides, env: sourceEnv(flags.config), onLocalWalk: (reads) => prepared.localReads.push(...reads) },
      jobs: flags.jobs,
      buildLimits: flags.buildLimits,
      remote: remotes.imports,
      exportRemote: remotes.exportTo,
      strictExport: flags.strictExport,
      force: new Set(flags.rebuild),
      signal: abort.signal,
    });
    // The totals are for humans; a fully cached run skips the write to stay fast.
    if (outcome.stats.built + outcome.stats.pulled > 0) addToTotals(store, outcome.stats);
    return outcome;
  } catch (error) {
    throw explainDiskFull(error, store.root);
  } finally {
    for (const signal of CANCELLING) process.off(signal, onSignal);
    await Promise.all([reporter.close(), ...[...remotes.imports, remotes.exportTo].map((r) => r?.close())]);
    const timings = reporter.writeTimings();
    if (timings) process.stderr.write(`castle: timings of this run: ${timings}\n`);
  }
}
