// Owns building a system: every layer it needs is found in the store, pulled from a remote cache,
// or built in a sandbox — as soon as its dependencies are ready, at most `jobs` at a time,
// longest remaining path first. Each layer has one LayerRun whose state (layer-state.ts has the
// map) only `moveTo` changes; one dispatch loop (`pump`) advances every layer something happened
// to. A failure stops new work and is reported with the failing layer and its log's tail.

import { availableParallelism } from "node:os";
import PQueue from "p-queue";
import { CastleError, isCastleError, messageOf } from "@castle/errors";
import type { KeyRecord, OutputDigest, Remote, Store, StoreClaim, WriteGuard } from "@castle/cache";
import { buildRootClosure, runClosure, type LayerGraph, type LayerNode } from "../dag/graph";
import { describeChanges, lastUse, recordUse, type LastUse } from "../explain/explain";
import { localSourceChanges } from "../explain/source-changes";
import { layerKey } from "../hash/layer-key";
import { sourceKey, type SourceContext } from "../sources";
import type { BuildEvent, BuildLayer, BuildStats } from "../types";
import { SkippedError, buildFailureOf, ownWork } from "./errors";
import { Exporter } from "./exporter";
import { digestIn, isBlocked, isFinal, type LayerState, type Origin } from "./layer-state";
import { criticalPaths } from "./priorities";
import { RemoteGuard } from "./remote-guard";
import { Resolver, keyDependencies, type RemoteResolution, type Resolution } from "./resolve";
import type { BuildLimitOverrides } from "./build-limits";
import { runBuild } from "./run-build";
import type { SandboxRunner } from "./sandbox-runner";
import { SourceTrees } from "./source-trees";

export interface SchedulerOptions {
  store: Store;
  sandbox: SandboxRunner;
  onEvent: (event: BuildEvent) => void;
  /** Source fetching: overrides, environment (mirrors), fetch/git clients. */
  sources: Omit<SourceContext, "store">;
  /** Concurrent builds. Default: the number of cores. */
  jobs?: number;
  /** Every build's limits over its layer's own and Castle's defaults (see build-limits.ts). */
  buildLimits?: BuildLimitOverrides;
  /** Remote caches to import from, tried in order. */
  remote?: Remote | readonly Remote[];
  /** Remote cache to export to, after each layer is done. */
  exportRemote?: Remote;
  /** Fail the build when an export fails (default: warn). */
  strictExport?: boolean;
  /** Kill running builds when one fails (default: let them finish). */
  cancelOnFailure?: boolean;
  /** Layer names to rebuild even if cached. */
  force?: ReadonlySet<string>;
  signal?: AbortSignal;
  /** The build's claim on the store, begun before anything was looked up (default: begun here). */
  claim?: StoreClaim;
}

export interface BuildOutcome {
  /** Trees of the system's root, bottom first: overlay lowers for running it. */
  lowers: string[];
  /** The layers of the system's root, bottom first, with their records. */
  layers: { name: string; key: string; record: KeyRecord }[];
  /** Every layer this build found, pulled or built, and its sources' trees (GC roots). */
  used: KeyRecord[];
  stats: BuildStats;
}

/**
 * Builds (or finds) everything the system needs under the build's claim on the store, which
 * records the system's GC root; throws the first failure as a CastleError.
 */
export async function buildSystem(graph: LayerGraph, options: SchedulerOptions): Promise<BuildOutcome> {
  const claim = options.claim ?? options.store.claim();
  return claim.run(graph.system.name, (guard) =>
    new Scheduler(graph, options, guard, (event) => guard.overtaken || options.onEvent(event)).run(),
  );
}

/** One layer's part in a run: its state, and what it waits on and what waits on it. */
interface LayerRun {
  readonly node: LayerNode;
  state: LayerState;
  /** The layers whose output digests its key covers, and whose trees its build needs (for a
   * merge layer: the layers it composes). */
  readonly deps: LayerRun[];
  /** The layers that list this one in their deps. */
  readonly dependents: LayerRun[];
  /** Its tree is needed: the system composes it, or a layer building needs it. */
  treeWanted: boolean;
  lastUse?: LastUse;
}

class Scheduler {
  private readonly started = Date.now();
  private readonly cores = availableParallelism();
  private readonly builds: PQueue;
  private readonly downloads = new PQueue({ concurrency: 4 });
  private readonly runs = new Map<LayerNode, LayerRun>();
  private readonly remote: RemoteGuard;
  private readonly resolver: Resolver;
  private readonly sourceTrees: SourceTrees;
  private readonly exporter?: Exporter;
  private readonly abort = new AbortController();
  private priorities = new Map<LayerNode, number>();
  private readonly dirty = new Set<LayerRun>();
  private pumping = false;
  private inFlight = 0;
  private settled!: () => void;
  private failure: unknown;
  private storeWrite?: Promise<void>;
  private running = 0;
  private readonly stats: BuildStats = {
    layers: 0, built: 0, pulled: 0, cached: 0, failed: 0, pushedBytes: 0, pulledBytes: 0, wallMs: 0, savedMs: 0,
  };

  constructor(
    private readonly graph: LayerGraph,
    private readonly options: SchedulerOptions,
    /** The pass's guard: awaited before the first write to the store. */
    private readonly guard: WriteGuard,
    /** Where events go (the caller's, unless this pass was overtaken by a prune). */
    private readonly emit: (event: BuildEvent) => void,
  ) {
    this.builds = new PQueue({ concurrency: Math.max(1, options.jobs ?? this.cores) });
    const sources: SourceContext = { ...options.sources, store: options.store, onProgress: reportSources(options.sources, emit) };
    this.remote = new RemoteGuard({
      imports: options.remote, exportTo: options.exportRemote, strictExport: options.strictExport, onEvent: emit,
    });
    this.resolver = new Resolver({ store: options.store, remote: this.remote, sources, force: options.force });
    this.sourceTrees = new SourceTrees(sources, (name) => this.resolver.knownSourceId(name));
    if (options.exportRemote) {
      this.exporter = new Exporter({
        remote: this.remote,
        store: options.store,
        onEvent: emit,
        onPushed: (bytes) => (this.stats.pushedBytes += bytes),
        ...(options.strictExport ? { onStrictFailure: (error: unknown) => this.fail(error) } : {}),
      });
    }
    for (const node of graph.order) {
      this.runs.set(node, { node, state: { phase: "waiting" }, deps: [], dependents: [], treeWanted: false });
    }
    for (const run of this.runs.values()) {
      const deps = run.node.layer.kind === "merge" ? runClosure([run.node]) : keyDependencies(run.node);
      for (const dep of new Set(deps)) {
        const depRun = this.runOf(dep);
        run.deps.push(depRun);
        depRun.dependents.push(run);
      }
    }
  }

  async run(): Promise<BuildOutcome> {
    const { store, signal } = this.options;
    const emit = this.emit;
    store.removeStaleStaging();
    for (const run of this.runs.values()) run.lastUse = lastUse(store, this.graph.system.name, run.node.name);
    this.priorities = criticalPaths(this.graph.order, (node) => this.runOf(node).lastUse?.buildMs ?? 1000);
    this.stats.layers = this.graph.order.length;
    emit({ type: "started", jobs: this.builds.concurrency });
    for (const node of this.graph.order) emit(queuedEvent(this.runOf(node)));
    const everything = new Promise<void>((resolve) => (this.settled = resolve));
    signal?.addEventListener("abort", () => this.cancel(signal.reason), { once: true });
    if (signal?.aborted) this.cancel(signal.reason);
    const closure = runClosure(this.graph.roots).map((node) => this.runOf(node));
    for (const run of closure) this.wantTree(run);
    for (const run of this.runs.values()) this.dirty.add(run);
    this.pump();
    await everything;
    await this.exporter?.settled();
    this.remote.finish();
    this.reportUntouched();
    this.stats.wallMs = Date.now() - this.started;
    const failedRun = closure.find((run) => run.state.phase !== "done");
    const error = this.failure ?? (failedRun ? new CastleError("CASTLE_BUILD_SKIPPED", `layer ${failedRun.node.name} was not built`) : undefined);
    emit({ type: "finished", ok: !error, stats: { ...this.stats } });
    if (error) throw error;
    const layers = closure.map((run) => ({ name: run.node.name, record: this.recordOf(run.node) }));
    return {
      lowers: layers.map(({ record }) => store.treePath(record.digest)),
      layers: layers.map(({ name, record }) => ({ name, key: record.key, record })),
      used: [...this.doneRecords(), ...this.sourceRecords()],
      stats: { ...this.stats },
    };
  }

  private runOf(node: LayerNode): LayerRun {
    const run = this.runs.get(node);
    if (!run) throw new Error(`internal: layer ${node.name} is not in the graph`);
    return run;
  }

  // ── the dispatch loop ──────────────────────────────────────────────────────────────────────

  /** Advances every layer something happened to, until nothing more can move without waiting. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (let run = first(this.dirty); run; run = first(this.dirty)) {
        this.dirty.delete(run);
        try {
          this.advance(run);
        } catch (error) {
          this.moveTo(run, this.failedState(run, error));
        }
      }
    } finally {
      this.pumping = false;
    }
    if (this.inFlight === 0) this.settled();
  }

  /** The one place a layer's state changes; what depends on it is looked at again. */
  private moveTo(run: LayerRun, state: LayerState): void {
    run.state = state;
    if (state.phase === "skipped") this.reportSkipped(run, state.because);
    this.dirty.add(run);
    for (const dependent of run.dependents) this.dirty.add(dependent);
  }

  /** Runs async work for a layer; its outcome is a state, and the loop goes on from there. */
  private work(run: LayerRun, task: () => Promise<LayerState>): void {
    this.inFlight++;
    task()
      .catch((error: unknown) => this.failedState(run, error))
      .then((state) => {
        this.inFlight--;
        this.moveTo(run, state);
        this.pump();
      });
  }

  private wantTree(run: LayerRun): void {
    if (run.treeWanted) return;
    run.treeWanted = true;
    this.dirty.add(run);
    if (run.node.layer.kind === "merge") for (const dep of run.deps) this.wantTree(dep);
  }

  /** Moves a layer on as far as it can go now; starts its async work when it has some. */
  private advance(run: LayerRun): void {
    const { state } = run;
    switch (state.phase) {
      case "waiting":
        if (this.blocked(run)) return;
        if (run.node.layer.kind === "merge") {
          if (run.deps.every((dep) => dep.state.phase === "done")) this.merged(run);
        } else if (run.deps.every((dep) => digestIn(dep.state) !== undefined)) {
          if (!this.stopped(run)) this.resolve(run);
        }
        return;
      case "resolved":
        if (state.resolution.where === "missing") {
          this.moveTo(run, { phase: "building", resolution: state.resolution, started: false });
        } else if (run.treeWanted && !this.stopped(run)) {
          if (state.resolution.where === "local") this.found(run, state.resolution);
          else this.pull(run, state.resolution);
        }
        return;
      case "building":
        if (state.started || this.blocked(run)) return;
        for (const dep of run.deps) this.wantTree(dep);
        if (run.deps.every((dep) => dep.state.phase === "done") && !this.stopped(run)) this.build(run, state);
        return;
      default:
        return;
    }
  }

  /** A layer whose dependencies will never all be had is skipped, naming the one that failed. */
  private blocked(run: LayerRun): boolean {
    const dep = run.deps.find((d) => isBlocked(d.state));
    if (dep) this.moveTo(run, { phase: "skipped", because: `${blockerOf(dep)} failed` });
    return dep !== undefined;
  }

  /** After a failure (or a cancellation), nothing new starts: the layer is skipped instead. */
  private stopped(run: LayerRun): boolean {
    if (!this.failure) return false;
    const failed = isCastleError(this.failure) ? this.failure.layer : undefined;
    this.moveTo(run, { phase: "skipped", because: failed ? `${failed} failed` : "the build was stopped" });
    return true;
  }

  // ── transitions with work ──────────────────────────────────────────────────────────────────

  private resolve(run: LayerRun): void {
    run.state = { phase: "resolving" };
    this.work(run, async () => {
      const resolution = await ownWork(run.node.name, () => this.resolver.resolve(run.node, (dep) => this.digestOf(dep)));
      return { phase: "resolved", resolution };
    });
  }

  private found(run: LayerRun, resolution: Extract<Resolution, { where: "local" }>): void {
    this.finish(run, resolution, resolution.record, "local");
  }

  private pull(run: LayerRun, resolution: RemoteResolution): void {
    run.state = { phase: "pulling", resolution };
    const { node } = run;
    const emit = this.emit;
    this.work(run, async () => {
      await this.beforeStoreWrite();
      const record = await this.downloads.add(async () => {
        this.throwIfFailed(node);
        emit({ type: "pulling", layer: node.name, key: resolution.key, bytesDone: 0, bytesTotal: resolution.manifest.size });
        return this.remote.pull(node.name, resolution.key, this.options.store, {
          name: node.name,
          signal: this.abort.signal,
          manifest: resolution.manifest,
          onProgress: (p) => emit({ type: "pulling", layer: node.name, key: resolution.key, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal }),
        });
      });
      const refused = this.remote.refused(node.name);
      if (record) {
        this.stats.pulledBytes += resolution.manifest.size;
        return this.finished(run, resolution, record, "pulled");
      }
      // The pull failed (a warning was given): build it. A copy refused as bad is no reference
      // for whether the build is reproducible; one that could not be fetched is.
      const missing: Resolution = { key: resolution.key, inputs: resolution.inputs, where: "missing" };
      return { phase: "building", resolution: missing, started: false, ...(refused ? {} : { remoteDigest: resolution.manifest.digest }) };
    });
  }

  private build(run: LayerRun, state: Extract<LayerState, { phase: "building" }>): void {
    run.state = { ...state, started: true };
    const { node } = run;
    const { layer } = node;
    this.work(run, async () => {
      await this.beforeStoreWrite();
      if (layer.kind === "import") {
        const started = Date.now();
        const digest = await ownWork(node.name, () => this.sourceTrees.tree(layer.from));
        // An import's time is its source's: fetching and unpacking it, when it was not stored yet.
        const record = this.options.store.link(state.resolution.key, digest, { name: node.name, buildMs: Date.now() - started, origin: "built" });
        return this.finished(run, state.resolution, record, "built");
      }
      if (layer.kind === "merge") throw new Error(`internal: merge layer ${node.name} has nothing to build`);
      // Its key was computed with the digests its dependencies were expected to have; a rebuilt
      // remote copy may have come out different. Then key it again with what is really there.
      const inputs = await ownWork(node.name, () => this.resolver.inputs(node, (dep) => this.digestOf(dep)));
      if (layerKey(inputs) !== state.resolution.key) return { phase: "waiting" };
      const { record, origin } = await this.runScript(run, layer, state.resolution);
      if (state.remoteDigest && record.digest !== state.remoteDigest) {
        this.emit({
          type: "warning", layer: node.name,
          message: `rebuilt ${node.name} differs from the remote copy (${record.digest.slice(0, 12)} vs ${state.remoteDigest.slice(0, 12)}): its build is not reproducible`,
        });
      }
      return this.finished(run, state.resolution, record, origin);
    });
  }

  /** Fetches what the build mounts, then runs its script in a build slot, under the key's lock. */
  private async runScript(run: LayerRun, layer: BuildLayer, resolution: Resolution): Promise<{ record: KeyRecord; origin: Origin }> {
    const { node } = run;
    const { store } = this.options;
    const emit = this.emit;
    const composed = (target: LayerNode) => runClosure([target]).map((n) => this.treeOf(n));
    const mountTrees = await ownWork(node.name, () => Promise.all(
      node.mounts.map(async (mount) => ({
        path: mount.path,
        trees: mount.target.kind === "source" ? [store.treePath(await this.sourceTrees.tree(mount.target.source))] : composed(mount.target.node),
      })),
    ));
    const rootTrees = buildRootClosure(node).map((n) => this.treeOf(n));
    if (this.builds.pending >= this.builds.concurrency) emit({ type: "waiting", layer: node.name, for: "slot" });
    return this.builds.add(
      () => {
        this.throwIfFailed(node);
        return ownWork(node.name, () => store.withKeyLock(resolution.key, async () => {
          this.throwIfFailed(node);
          // Another process may have built it while we waited for the lock (unless asked to rebuild).
          const done = this.options.force?.has(node.name) ? undefined : store.lookup(resolution.key);
          if (done) return { record: done, origin: "local" as const };
          const jobs = jobShare(this.cores, Math.min(this.builds.concurrency, this.running + 1 + this.builds.size));
          const reason = this.options.force?.has(node.name)
            ? { kind: "forced" as const, changes: ["asked to rebuild"] }
            : describeChanges(run.lastUse?.inputs, resolution.inputs, localSourceChanges(store, this.graph.sources, this.options.sources.overrides));
          emit({ type: "building", layer: node.name, key: resolution.key, reason, logPath: store.logPath(resolution.key), jobs });
          this.running++;
          try {
            const record = await runBuild(
              { name: node.name, key: resolution.key, build: layer.build, rootTrees, mountTrees, jobs },
              {
                store, sandbox: this.options.sandbox, signal: this.abort.signal, onLine: (line) => emit({ type: "log", layer: node.name, line }),
                ...(this.options.buildLimits ? { limits: this.options.buildLimits } : {}),
              },
            );
            return { record, origin: "built" as const };
          } finally {
            this.running--;
          }
        }));
      },
      { priority: this.priorities.get(node) ?? 0 },
    );
  }

  // ── endings ────────────────────────────────────────────────────────────────────────────────

  private finish(run: LayerRun, resolution: Resolution, record: KeyRecord, origin: Origin): void {
    this.moveTo(run, this.finished(run, resolution, record, origin));
  }

  /** The done state of a layer, with its events, statistics, explain record and export. */
  private finished(run: LayerRun, resolution: Resolution, record: KeyRecord, origin: Origin): LayerState {
    const { node } = run;
    const emit = this.emit;
    if (origin === "local") {
      this.stats.cached++;
      this.stats.savedMs += record.buildMs;
      emit({ type: "cache-hit", layer: node.name, key: resolution.key, digest: record.digest });
    } else if (origin === "pulled") this.stats.pulled++;
    else this.stats.built++;
    emit({ type: "done", layer: node.name, key: resolution.key, record, origin });
    const previous = run.lastUse;
    recordUse(this.options.store, this.graph.system.name, node.name, {
      key: resolution.key,
      inputs: resolution.inputs,
      buildMs: origin === "built" ? record.buildMs : previous?.buildMs ?? record.buildMs,
    }, previous);
    this.exporter?.push(node, record);
    return { phase: "done", resolution, record, origin };
  }

  private merged(run: LayerRun): void {
    this.moveTo(run, { phase: "merged" });
    this.emit({ type: "merged", layer: run.node.name });
  }

  /** The state of a layer whose own work threw: failed (reported once, with its log's tail), or
   * skipped when another layer's failure stopped it. */
  private failedState(run: LayerRun, error: unknown): LayerState {
    const emit = this.emit;
    const { name } = run.node;
    if (error instanceof SkippedError || (isCastleError(error) && error.code === "CASTLE_BUILD_SKIPPED")) {
      return { phase: "skipped", because: (error as SkippedError).because };
    }
    const blamed = isCastleError(error) ? error.layer : undefined;
    if (blamed !== name) {
      const because = blamed ? `${blamed} failed` : messageOf(error);
      return { phase: "skipped", because };
    }
    this.stats.failed++;
    emit({ type: "failed", layer: name, message: messageOf(error), code: isCastleError(error) ? error.code : undefined, ...buildFailureOf(error) });
    this.fail(error);
    return { phase: "failed", error };
  }

  private fail(error: unknown): void {
    if (this.failure) return;
    this.failure = error;
    // Queued work is not dropped (its promises must settle): each task checks for the failure.
    if (this.options.cancelOnFailure || (isCastleError(error) && error.code === "CASTLE_CANCELLED")) this.abort.abort();
  }

  private cancel(reason: unknown): void {
    const signal = typeof reason === "string" && reason.startsWith("SIG") ? reason : undefined;
    this.emit({ type: "cancelled", signal });
    this.fail(new CastleError("CASTLE_CANCELLED", `the build was cancelled${signal ? ` (${signal})` : ""}`, { data: { signal } }));
    for (const run of this.runs.values()) this.dirty.add(run);
    this.pump();
  }

  private throwIfFailed(node: LayerNode): void {
    if (!this.failure) return;
    const layer = isCastleError(this.failure) ? this.failure.layer : undefined;
    throw new SkippedError(node.name, layer ? `${layer} failed` : "the build was stopped");
  }

  /** Layers left behind: not needed (what uses them was found), or stopped by a failure. */
  private reportUntouched(): void {
    for (const run of this.runs.values()) {
      if (isFinal(run.state)) continue;
      const because = this.failure ? "the build stopped" : "not needed: everything that uses it is cached";
      run.state = { phase: "skipped", because };
      this.reportSkipped(run, because);
    }
  }

  private readonly reportedSkips = new Set<LayerRun>();

  private reportSkipped(run: LayerRun, because: string): void {
    if (this.reportedSkips.has(run)) return;
    this.reportedSkips.add(run);
    this.emit({ type: "skipped", layer: run.node.name, because });
  }

  // ── helpers ────────────────────────────────────────────────────────────────────────────────

  private digestOf(node: LayerNode): OutputDigest {
    const digest = digestIn(this.runOf(node).state);
    if (digest === undefined) throw new Error(`internal: the output of ${node.name} is not known yet`);
    return digest;
  }

  private recordOf(node: LayerNode): KeyRecord {
    const { state } = this.runOf(node);
    if (state.phase !== "done") throw new Error(`internal: the tree of ${node.name} is not in the store yet`);
    return state.record;
  }

  private treeOf(node: LayerNode): string {
    return this.options.store.treePath(this.recordOf(node).digest);
  }

  private beforeStoreWrite(): Promise<void> {
    return (this.storeWrite ??= this.guard.beforeWrite());
  }

  private *doneRecords(): Iterable<KeyRecord> {
    for (const run of this.runs.values()) if (run.state.phase === "done") yield run.state.record;
  }

  /** Stored trees of this system's sources: GC roots too, so a prune does not make a rebuild
   * download and unpack them again. */
  private sourceRecords(): KeyRecord[] {
    const out: KeyRecord[] = [];
    for (const name of this.graph.sources.keys()) {
      const id = this.resolver.knownSourceId(name);
      const record = id ? this.options.store.lookup(sourceKey(id)) : undefined;
      if (record) out.push(record);
    }
    return out;
  }
}

/** The layer to blame when a dependency cannot be had: the one that failed, not one skipped. */
function blockerOf(dep: LayerRun): string {
  if (dep.state.phase === "skipped") {
    const match = /^(\S+) failed$/.exec(dep.state.because);
    if (match) return match[1]!;
  }
  return dep.node.name;
}

function first<T>(set: Set<T>): T | undefined {
  for (const item of set) return item;
  return undefined;
}

/** Source progress as events (and to the caller's own listener, if any). */
function reportSources(sources: SchedulerOptions["sources"], onEvent: (event: BuildEvent) => void): SourceContext["onProgress"] {
  return (progress) => {
    sources.onProgress?.(progress);
    onEvent({ type: "source", source: progress.source, phase: progress.phase, bytesDone: progress.bytesDone, bytesTotal: progress.bytesTotal });
  };
}

/** A layer's `queued` event: what a view needs to place it and estimate its time. */
function queuedEvent(run: LayerRun): BuildEvent {
  const waitsFor = run.deps.map((dep) => dep.node.name);
  return { type: "queued", layer: run.node.name, kind: run.node.layer.kind, waitsFor, expectedMs: run.lastUse?.buildMs };
}

/**
 * The jobs (MAKEFLAGS -j, CASTLE_JOBS) a build gets when `sharing` builds can run at once (queued
 * ones count only up to the concurrency limit: they wait for a slot). A share is fixed for a
 * build's life, so an exact share (cores / sharing) leaves cores idle once the other builds end
 * and a long one finishes alone at -j1 (busybox after musl in examples/distro). Each build gets
 * twice its exact share instead, capped at every core: a build left alone keeps the machine busy,
 * and at most about twice as many compile jobs as cores run at once.
 */
export function jobShare(cores: number, sharing: number): number {
  return Math.max(1, Math.min(cores, Math.floor((2 * cores) / Math.max(1, sharing))));
}
