// Owns resolving a layer: computing its key once its dependencies' output digests are known,
// and finding where its output already is — the local store, the remote cache, or nowhere
// (then it must be built). Shared by the scheduler and by `plan` (castle why).

import type { KeyRecord, LayerKey, OutputDigest, Remote, RemoteManifest, Store } from "@castle/cache";
import { buildRootClosure, runClosure, type LayerGraph, type LayerNode } from "../dag/graph";
import { keyInputs, layerKey, type KeyInputs } from "../hash/layer-key";
import { sourceIdentity, type SourceContext } from "../sources";
import { allFinished, ownWork } from "./errors";
import { RemoteGuard } from "./remote-guard";
import type { BuildEvent, Source } from "../types";

export interface Resolution {
  key: LayerKey;
  inputs: KeyInputs;
  /** Where the output is: in the store, in the remote (not downloaded), or not yet anywhere. */
  where: "local" | "remote" | "missing";
  record?: KeyRecord;
  manifest?: RemoteManifest;
}

export interface ResolverOptions {
  store: Store;
  remote?: Remote;
  sources: SourceContext;
  onEvent: (event: BuildEvent) => void;
  /** Layer names whose cached outputs are ignored. */
  force?: ReadonlySet<string>;
}

export class Resolver {
  readonly remote: RemoteGuard;
  private readonly resolutions = new Map<LayerNode, Promise<Resolution>>();
  private readonly digests = new Map<LayerNode, OutputDigest>();
  private readonly sourceIds = new Map<string, string>();
  private readonly identities = new Map<string, Promise<void>>();

  constructor(
    readonly graph: LayerGraph,
    private readonly options: ResolverOptions,
    /** How to get a layer's output digest when it is not stored anywhere yet (build it). */
    private readonly produce: (node: LayerNode, resolution: Resolution) => Promise<OutputDigest>,
  ) {
    this.remote = new RemoteGuard(options.remote, options.onEvent);
  }

  /** The output digest of a layer: looked up, pulled-manifest, or produced. */
  async digest(node: LayerNode): Promise<OutputDigest> {
    const known = this.digests.get(node);
    if (known) return known;
    const resolution = await this.resolve(node);
    const digest =
      resolution.record?.digest ?? resolution.manifest?.digest ?? (await this.produce(node, resolution));
    this.digests.set(node, digest);
    return digest;
  }

  /** Records a digest learned later (e.g. a pulled layer whose remote copy turned out bad was rebuilt). */
  setDigest(node: LayerNode, digest: OutputDigest): void {
    this.digests.set(node, digest);
  }

  resolve(node: LayerNode): Promise<Resolution> {
    let pending = this.resolutions.get(node);
    if (!pending) {
      pending = this.computeResolution(node);
      this.resolutions.set(node, pending);
    }
    return pending;
  }

  private async computeResolution(node: LayerNode): Promise<Resolution> {
    // Yield before asking for the dependencies: digest → resolve → computeResolution would
    // otherwise recurse synchronously down a chain, and a few thousand layers overflow the stack.
    await Promise.resolve();
    const deps = [...buildRootClosure(node)];
    for (const mount of node.mounts) if (mount.target.kind === "layer") deps.push(...runClosure([mount.target.node]));
    const sources: Source[] = node.mounts.flatMap((m) => (m.target.kind === "source" ? [m.target.source] : []));
    if (node.layer.from) sources.push(node.layer.from);
    await Promise.all(deps.map((dep) => this.digest(dep)));
    return ownWork(node.name, () => this.lookup(node, sources));
  }

  private async lookup(node: LayerNode, sources: Source[]): Promise<Resolution> {
    await allFinished(sources.map((s) => this.identify(s)));
    const inputs = keyInputs(node, {
      digestOf: (n) => this.digests.get(n)!,
      sourceId: (name) => this.sourceIds.get(name)!,
      rootOf: buildRootClosure,
      compositionOf: (n) => runClosure([n]),
    });
    const key = layerKey(inputs);
    if (this.options.force?.has(node.name)) return { key, inputs, where: "missing" };
    const record = this.options.store.lookup(key);
    if (record) return { key, inputs, where: "local", record };
    const manifest = await this.remote.attempt(node.name, "lookup", (remote) => remote.lookup(key));
    if (manifest) return { key, inputs, where: "remote", manifest };
    return { key, inputs, where: "missing" };
  }

  /** The identity a source had when keys were computed. */
  sourceId(name: string): string | undefined {
    return this.sourceIds.get(name);
  }

  private identify(source: Source): Promise<void> {
    let pending = this.identities.get(source.name);
    if (!pending) {
      pending = sourceIdentity(source, this.options.sources).then((identity) => {
        this.sourceIds.set(source.name, identity.id);
      });
      this.identities.set(source.name, pending);
    }
    return pending;
  }
}
