// Owns resolving a layer: computing its key from its dependencies' output digests and its
// sources' identities, then finding where its output already is — the local store, a remote
// cache, or nowhere (then it must be built). Knows nothing of building: the scheduler and `plan`
// (castle why) each decide what to do with a resolution.

import type { KeyRecord, LayerKey, OutputDigest, RemoteManifest, Store } from "@castle/cache";
import { buildRootClosure, runClosure, type LayerNode } from "../dag/graph";
import { keyInputs, layerKey, type KeyInputs } from "../hash/layer-key";
import { sourceIdentity, type SourceContext } from "../sources";
import type { Source } from "../types";
import { allFinished } from "./errors";
import type { RemoteGuard } from "./remote-guard";

interface Keyed {
  key: LayerKey;
  inputs: KeyInputs;
}

/** Where a layer's output is: found in the store, known to a remote (not downloaded), or nowhere. */
export type Resolution =
  | (Keyed & { where: "local"; record: KeyRecord })
  | (Keyed & { where: "remote"; manifest: RemoteManifest })
  | (Keyed & { where: "missing" });

export type RemoteResolution = Extract<Resolution, { where: "remote" }>;

/** The output digest a resolution already knows (undefined: the layer must be built first). */
export function knownDigest(resolution: Resolution): OutputDigest | undefined {
  switch (resolution.where) {
    case "local":
      return resolution.record.digest;
    case "remote":
      return resolution.manifest.digest;
    case "missing":
      return undefined;
  }
}

/** The layers whose output digests a layer's key covers: its build root and what it mounts (an
 * import's key covers only its source). */
export function keyDependencies(node: LayerNode): LayerNode[] {
  if (node.layer.kind === "import") return [];
  const deps = buildRootClosure(node);
  for (const mount of node.mounts) if (mount.target.kind === "layer") deps.push(...runClosure([mount.target.node]));
  return deps;
}

/** The sources a layer's key covers: what it mounts and, for an import, what it imports. */
export function keySources(node: LayerNode): Source[] {
  const sources = node.mounts.flatMap((m) => (m.target.kind === "source" ? [m.target.source] : []));
  if (node.layer.kind === "import") sources.push(node.layer.from);
  return sources;
}

export interface ResolverOptions {
  store: Store;
  /** The remote caches to ask when the store lacks a key (faults become warnings). */
  remote: RemoteGuard;
  sources: SourceContext;
  /** Layer names whose cached outputs are ignored. */
  force?: ReadonlySet<string>;
}

/** Resolves layers; remembers each source's identity, computed once per run. */
export class Resolver {
  private readonly identities = new Map<string, Promise<string>>();
  private readonly identified = new Map<string, string>();

  constructor(private readonly options: ResolverOptions) {}

  /** The key inputs of a layer whose key dependencies' digests are all known. */
  async inputs(node: LayerNode, digestOf: (dep: LayerNode) => OutputDigest): Promise<KeyInputs> {
    const ids = new Map<string, string>();
    const sources = keySources(node);
    const found = await allFinished(sources.map((s) => this.sourceId(s)));
    sources.forEach((s, i) => ids.set(s.name, found[i]!));
    return keyInputs(node, {
      digestOf,
      sourceId: (name) => ids.get(name) ?? missingSource(name),
      rootOf: buildRootClosure,
      compositionOf: (n) => runClosure([n]),
    });
  }

  /** Keys a layer and looks its output up: the store first, then the remote caches. */
  async resolve(node: LayerNode, digestOf: (dep: LayerNode) => OutputDigest): Promise<Resolution> {
    const inputs = await this.inputs(node, digestOf);
    const key = layerKey(inputs);
    if (this.options.force?.has(node.name)) return { key, inputs, where: "missing" };
    const record = this.options.store.lookup(key);
    if (record) return { key, inputs, where: "local", record };
    const manifest = await this.options.remote.lookup(node.name, key);
    if (manifest) return { key, inputs, where: "remote", manifest };
    return { key, inputs, where: "missing" };
  }

  /** The identity a source has in this run's keys (its pin, or the digest of its files). */
  sourceId(source: Source): Promise<string> {
    let pending = this.identities.get(source.name);
    if (!pending) {
      pending = sourceIdentity(source, this.options.sources).then((identity) => {
        this.identified.set(source.name, identity.id);
        return identity.id;
      });
      this.identities.set(source.name, pending);
    }
    return pending;
  }

  /** The identity a source was given in this run's keys, once computed. */
  knownSourceId(name: string): string | undefined {
    return this.identified.get(name);
  }
}

function missingSource(name: string): never {
  throw new Error(`internal: source ${name} has no identity`);
}
