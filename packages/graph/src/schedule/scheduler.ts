// Owns building a system: every layer the system needs is found in the store, pulled from the
// remote cache, or built in a sandbox — as soon as its dependencies are ready, at most `jobs` at a
// time, longest remaining path first. A failure stops new work and is reported with the failing
// layer and its log's tail. Built layers are exported to a remote in dependency order.

import { availableParallelism } from "node:os";
import PQueue from "p-queue";
import { CastleError, isCastleError, messageOf } from "@castle/errors";
import type { KeyRecord, LayerKey, OutputDigest, Remote, Store } from "@castle/cache";
import { buildRootClosure, runClosure, type LayerGraph, type LayerNode } from "../dag/graph";
import { describeChanges, lastUse, recordUse, type LastUse } from "../explain/explain";
import { realizeSource, sourceKey, type SourceContext } from "../sources";
import type { BuildEvent, BuildStats } from "../types";
import { SkippedError, allFinished, buildFailureOf, ownWork } from "./errors";
import { criticalPaths } from "./priorities";
import { Resolver, type Resolution } from "./resolve";
import { runBuild } from "./run-build";
import type { SandboxRunner } from "./sandbox-runner";

export interface SchedulerOptions {
  store: Store;
  sandbox: SandboxRunner;
  onEvent: (event: BuildEvent) => void;
  /** Source fetching: overrides, environment (mirrors), fetch/git clients. */
  sources: Omit<SourceContext, "store">;
  /** Concurrent builds. Default: the number of cores. */
  jobs?: number;
  /** Remote cache to import from. */
  remote?: Remote;
  /** Remote cache to export to, after each layer is done. */
  exportRemote?: Remote;
  /** Fail the build when an export fails (default: warn). */
  strictExport?: boolean;
  /** Kill running builds when one fails (default: let them finish). */
  cancelOnFailure?: boolean;
  /** Layer names to rebuild even if cached. */
  force?: ReadonlySet<string>;
  signal?: AbortSignal;
  /**
   * Awaited once, before the first layer is built, pulled or imported: the caller's claim on the
   * store against a concurrent prune (a throw fails the build).
   */
  beforeStoreWrite?: () => Promise<void>;
}

export interface BuildOutcome {
  /** Trees of the system's root, bottom first: overlay lowers for running it. */
  lowers: string[];
  /** The layers of the system's root, bottom first, with their records. */
  layers: { name: string; key: LayerKey; record: KeyRecord }[];
  /** Every layer this build found, pulled or built (GC roots: what the system needs). */
  used: KeyRecord[];
  stats: BuildStats;
}

/** Builds (or finds) everything the system needs; throws the first failure as a CastleError. */
export async function buildSystem(graph: LayerGraph, options: SchedulerOptions): Promise<BuildOutcome> {
  return new Scheduler(graph, options).run();
}

class Scheduler {
  private readonly started = Date.now();
  private readonly cores = availableParallelism();
  private readonly builds: PQueue;
  private readonly downloads = new PQueue({ concurrency: 4 });
  /** Sources realized at once: a layer may mount a hundred pinned files, and a hundred parallel
   * connections (and DNS look-ups) make mirrors and resolvers time out. */
  private readonly fetches = new PQueue({ concurrency: 6 });
  private readonly resolver: Resolver;
  private readonly sourceContext: SourceContext;
  private readonly records = new Map<LayerNode, KeyRecord>();
  private readonly materialized = new Map<LayerNode, Promise<KeyRecord>>();
  private readonly sourceTrees = new Map<string, Promise<OutputDigest>>();
  private readonly pushes = new Map<LayerNode, Promise<void>>();
  private readonly producing = new Map<LayerNode, Promise<OutputDigest>>();
  private readonly finishedLayers = new Set<LayerNode>();
  private readonly lastUses = new Map<LayerNode, LastUse | undefined>();
  private readonly priorities: Map<LayerNode, number>;
  private readonly abort = new AbortController();
  private failure: unknown;
  private storeWrite?: Promise<void>;
  private running = 0;
  private readonly stats: BuildStats = {
    layers: 0, built: 0, pulled: 0, cached: 0, failed: 0, pushedBytes: 0, pulledBytes: 0, wallMs: 0, savedMs: 0,
  };

  constructor(
    private readonly graph: LayerGraph,
    private readonly options: SchedulerOptions,
  ) {
    this.builds = new PQueue({ concurrency: Math.max(1, options.jobs ?? this.cores) });
    this.sourceContext = { ...options.sources, store: options.store };
    this.resolver = new Resolver(
      graph,
      { store: options.store, remote: options.remote, sources: this.sourceContext, onEvent: options.onEvent, force: options.force },
      (node, resolution) => this.produce(node, resolution),
    );
    options.store.removeStaleStaging();
    for (const node of graph.order) this.lastUses.set(node, lastUse(options.store, graph.system.name, node.name));
    this.priorities = criticalPaths(graph.order, (node) => this.lastUses.get(node)?.buildMs ?? 1000);
    options.signal?.addEventListener(
      "abort",
      () => {
        const reason: unknown = options.signal?.reason;
        const signal = typeof reason === "string" && reason.startsWith("SIG") ? reason : undefined;
        this.fail(new CastleError("CASTLE_CANCELLED", `the build was cancelled${signal ? ` (${signal})` : ""}`, { data: { signal } }));
      },
      { once: true },
    );
  }

  async run(): Promise<BuildOutcome> {
    const emit = this.options.onEvent;
    for (const node of this.graph.order) emit({ type: "queued", layer: node.name });
    this.stats.layers = this.graph.order.length;
    const closure = runClosure(this.graph.roots);
    const results = await Promise.allSettled(closure.map((node) => this.materialize(node)));
    // Merge layers have no tree of their own: they are done when their layers are.
    await Promise.allSettled(this.graph.order.filter((n) => n.layer.kind === "merge").map((n) => this.finishMerge(n)));
    await Promise.allSettled(this.pushes.values());
    this.reportUntouched();
    this.stats.wallMs = Date.now() - this.started;
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    const error = this.failure ?? failed?.reason;
    emit({ type: "finished", ok: !error, stats: { ...this.stats } });
    if (error) throw error;
    return {
      lowers: closure.map((node) => this.options.store.treePath(this.records.get(node)!.digest)),
      layers: closure.map((node) => ({ name: node.name, key: this.records.get(node)!.key, record: this.records.get(node)! })),
      used: [...this.records.values(), ...this.sourceRecords()],
      stats: { ...this.stats },
    };
  }

  /** Stored trees of this system's sources: GC roots too, so a prune does not make a rebuild
   * download and unpack them again. */
  private sourceRecords(): KeyRecord[] {
    const out: KeyRecord[] = [];
    for (const name of this.graph.sources.keys()) {
      const id = this.resolver.sourceId(name);
      const record = id ? this.options.store.lookup(sourceKey(id)) : undefined;
      if (record) out.push(record);
    }
    return out;
  }

  /** Makes a layer's tree present in the local store. */
  private materialize(node: LayerNode): Promise<KeyRecord> {
    let pending = this.materialized.get(node);
    if (!pending) {
      pending = this.track(node, this.fetchOrBuild(node));
      this.materialized.set(node, pending);
    }
    return pending;
  }

  private async fetchOrBuild(node: LayerNode): Promise<KeyRecord> {
    await this.resolver.digest(node);
    const resolution = await this.resolver.resolve(node);
    const known = this.records.get(node);
    if (known) return known;
    if (resolution.where === "local") return this.finish(node, resolution, resolution.record!, "local");
    if (resolution.where === "remote") {
      const pulled = await this.pull(node, resolution);
      if (pulled) return pulled;
      const digest = await this.produce(node, resolution);
      if (digest !== resolution.manifest!.digest) {
        this.options.onEvent({
          type: "warning", layer: node.name,
          message: `rebuilt ${node.name} differs from the remote copy (${digest.slice(0, 12)} vs ${resolution.manifest!.digest.slice(0, 12)}): its build is not reproducible`,
        });
      }
      this.resolver.setDigest(node, digest);
      return this.records.get(node)!;
    }
    // "missing": resolver.digest() already produced it.
    return this.records.get(node)!;
  }

  private async pull(node: LayerNode, resolution: Resolution): Promise<KeyRecord | undefined> {
    const emit = this.options.onEvent;
    await this.beforeStoreWrite();
    const record = await this.downloads.add(async () => {
      this.throwIfFailed(node);
      emit({ type: "pulling", layer: node.name, key: resolution.key, bytesDone: 0, bytesTotal: resolution.manifest!.size });
      return this.resolver.remote.attempt(node.name, "pull", (remote) =>
        remote.pull(resolution.key, this.options.store, {
          name: node.name,
          signal: this.abort.signal,
          manifest: resolution.manifest,
          onProgress: (p) => emit({ type: "pulling", layer: node.name, key: resolution.key, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal }),
        }),
      );
    });
    if (!record) return undefined;
    this.stats.pulledBytes += resolution.manifest!.size;
    return this.finish(node, resolution, record, "pulled");
  }

  /** Produces a layer's output once, however many paths ask for it (the resolver's digest() and
   * materialize() both can). */
  private produce(node: LayerNode, resolution: Resolution): Promise<OutputDigest> {
    let pending = this.producing.get(node);
    if (!pending) {
      pending = this.produceNow(node, resolution);
      this.producing.set(node, pending);
    }
    return pending;
  }

  /** Produces a layer's output that is stored nowhere: import its source or build it. */
  private async produceNow(node: LayerNode, resolution: Resolution): Promise<OutputDigest> {
    const { layer } = node;
    if (layer.kind === "merge") throw new Error(`internal: merge layer ${node.name} has no output`);
    await this.beforeStoreWrite();
    if (layer.kind === "import") {
      const digest = await ownWork(node.name, () => this.sourceTree(layer.from!.name, layer.from!));
      const record = this.options.store.link(resolution.key, digest, { name: node.name, buildMs: 0, origin: "built" });
      this.finish(node, resolution, record, "built");
      return digest;
    }
    const rootNodes = buildRootClosure(node);
    const mountNodes = node.mounts.map((m) => (m.target.kind === "layer" ? runClosure([m.target.node]) : []));
    await Promise.all([...rootNodes, ...mountNodes.flat()].map((dep) => this.materialize(dep)));
    this.throwIfFailed(node);
    const mountTrees = await ownWork(node.name, () => allFinished(
      node.mounts.map(async (mount, i) => ({
        path: mount.path,
        trees:
          mount.target.kind === "source"
            ? [this.options.store.treePath(await this.sourceTree(mount.target.source.name, mount.target.source))]
            : mountNodes[i]!.map((n) => this.treeOf(n)),
      })),
    ));
    const record = await this.builds.add(
      () => {
        this.throwIfFailed(node);
        return ownWork(node.name, () => this.options.store.withKeyLock(resolution.key, async () => {
          this.throwIfFailed(node);
          // Another process may have built it while we waited for the lock (unless asked to rebuild).
          const done = this.options.force?.has(node.name) ? undefined : this.options.store.lookup(resolution.key);
          if (done) return { record: done, origin: "local" as const };
          const jobs = jobShare(this.cores, Math.min(this.builds.concurrency, this.running + 1 + this.builds.size));
          const reason = this.options.force?.has(node.name)
            ? { kind: "forced" as const, changes: ["asked to rebuild"] }
            : describeChanges(this.lastUses.get(node)?.inputs, resolution.inputs);
          this.options.onEvent({ type: "building", layer: node.name, key: resolution.key, reason, logPath: this.options.store.logPath(resolution.key), jobs });
          this.running++;
          try {
            const built = await runBuild(
              { node, key: resolution.key, rootTrees: rootNodes.map((n) => this.treeOf(n)), mountTrees, jobs },
              {
                store: this.options.store,
                sandbox: this.options.sandbox,
                signal: this.abort.signal,
                onLine: (line) => this.options.onEvent({ type: "log", layer: node.name, line }),
              },
            );
            return { record: built, origin: "built" as const };
          } finally {
            this.running--;
          }
        }));
      },
      { priority: this.priorities.get(node) ?? 0 },
    );
    this.finish(node, resolution, record!.record, record!.origin);
    return record!.record.digest;
  }

  private beforeStoreWrite(): Promise<void> {
    const hook = this.options.beforeStoreWrite;
    if (!hook) return Promise.resolve();
    return (this.storeWrite ??= hook());
  }

  private sourceTree(name: string, source: Parameters<typeof realizeSource>[0]): Promise<OutputDigest> {
    let pending = this.sourceTrees.get(name);
    if (!pending) {
      pending = this.fetches.add(() => realizeSource(source, this.sourceContext)).then((digest) => {
        // A local directory is keyed by its content: if it changed since the keys were computed,
        // building with it would store an output under a key that does not describe it.
        const id = this.resolver.sourceId(name);
        if (id?.startsWith("local:") && id !== `local:${digest}`) {
          throw new CastleError("CASTLE_SOURCE_CHANGED", `source ${name} changed while Castle was building; run the build again`, {
            data: { source: name, expected: id, actual: `local:${digest}` },
          });
        }
        return digest;
      });
      this.sourceTrees.set(name, pending);
    }
    return pending;
  }

  private treeOf(node: LayerNode): string {
    return this.options.store.treePath(this.records.get(node)!.digest);
  }

  private finish(node: LayerNode, resolution: Resolution, record: KeyRecord, origin: "built" | "pulled" | "local"): KeyRecord {
    if (this.records.has(node)) return this.records.get(node)!;
    this.records.set(node, record);
    this.finishedLayers.add(node);
    const emit = this.options.onEvent;
    if (origin === "local") {
      this.stats.cached++;
      this.stats.savedMs += record.buildMs;
      emit({ type: "cache-hit", layer: node.name, key: resolution.key, digest: record.digest });
    } else if (origin === "pulled") this.stats.pulled++;
    else this.stats.built++;
    emit({ type: "done", layer: node.name, key: resolution.key, record, origin });
    const previous = this.lastUses.get(node);
    recordUse(this.options.store, this.graph.system.name, node.name, {
      key: resolution.key,
      inputs: resolution.inputs,
      buildMs: origin === "built" ? record.buildMs : previous?.buildMs ?? record.buildMs,
    }, previous);
    this.schedulePush(node, record);
    return record;
  }

  /** Exports a layer after its dependencies, so manifests appear in dependency order. */
  private schedulePush(node: LayerNode, record: KeyRecord): void {
    const remote = this.options.exportRemote;
    if (!remote) return;
    const deps = buildRootClosure(node).map((dep) => this.pushes.get(dep)).filter(Boolean);
    const push = Promise.allSettled(deps).then(async () => {
      try {
        const result = await remote.push(record, this.options.store, { name: node.name });
        this.stats.pushedBytes += result.uploadedBytes;
        this.options.onEvent({ type: "pushed", layer: node.name, key: record.key, uploadedBytes: result.uploadedBytes });
      } catch (error) {
        if (this.options.strictExport) this.fail(error);
        this.options.onEvent({
          type: "warning", layer: node.name, code: isCastleError(error) ? error.code : undefined,
          message: `export of ${node.name} to ${remote.url} failed: ${messageOf(error)}`,
        });
      }
    });
    this.pushes.set(node, push);
  }

  private async finishMerge(node: LayerNode): Promise<void> {
    const deps = runClosure([node]);
    const settled = await Promise.allSettled(deps.map((dep) => this.materialized.get(dep) ?? Promise.resolve()));
    if (settled.every((s) => s.status === "fulfilled") && deps.every((d) => this.finishedLayers.has(d))) {
      this.finishedLayers.add(node);
      this.options.onEvent({ type: "done", layer: node.name, key: "", origin: "local" });
    }
  }

  /** Wraps a layer's work so its failure is reported once, with its log tail. */
  private async track(node: LayerNode, work: Promise<KeyRecord>): Promise<KeyRecord> {
    try {
      return await work;
    } catch (error) {
      this.report(node, error);
      throw error;
    }
  }

  private readonly reported = new Set<LayerNode>();

  private report(node: LayerNode, error: unknown): void {
    if (this.reported.has(node)) return;
    this.reported.add(node);
    this.finishedLayers.add(node);
    const emit = this.options.onEvent;
    if (error instanceof SkippedError || (isCastleError(error) && error.code === "CASTLE_BUILD_SKIPPED")) {
      emit({ type: "skipped", layer: node.name, because: (error as SkippedError).because });
      return;
    }
    const blamed = isCastleError(error) ? error.layer : undefined;
    if (blamed !== node.name) {
      emit({ type: "skipped", layer: node.name, because: blamed ? `${blamed} failed` : messageOf(error) });
      return;
    }
    this.stats.failed++;
    emit({
      type: "failed",
      layer: node.name,
      message: messageOf(error),
      code: isCastleError(error) ? error.code : undefined,
      ...buildFailureOf(error),
    });
    this.fail(error);
  }

  private fail(error: unknown): void {
    if (this.failure) return;
    this.failure = error;
    // Queued work is not dropped (its promises must settle): each task checks for the failure.
    if (this.options.cancelOnFailure || (isCastleError(error) && error.code === "CASTLE_CANCELLED")) this.abort.abort();
  }

  private throwIfFailed(node: LayerNode): void {
    if (this.failure) {
      const layer = isCastleError(this.failure) ? this.failure.layer : undefined;
      throw new SkippedError(node.name, layer ? `${layer} failed` : "the build was stopped");
    }
  }

  /** Layers never touched: not needed because what uses them was found, or blocked by a failure. */
  private reportUntouched(): void {
    for (const node of this.graph.order) {
      if (this.finishedLayers.has(node) || this.reported.has(node)) continue;
      this.options.onEvent({
        type: "skipped",
        layer: node.name,
        because: this.failure ? "the build stopped" : "not needed: everything that uses it is cached",
      });
    }
  }
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
