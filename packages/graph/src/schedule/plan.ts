// Owns `plan` (what `castle why` shows): for every layer, whether it is stored locally, in the
// remote, must be built — and why — or cannot be known until a dependency is rebuilt.

import type { LayerKey, OutputDigest, Remote, Store } from "@castle/cache";
import { edges, type LayerGraph, type LayerNode } from "../dag/graph";
import { describeChanges, lastUse } from "../explain/explain";
import { localSourceChanges } from "../explain/source-changes";
import type { SourceContext } from "../sources";
import type { BuildEvent, BuildReason } from "../types";
import { RemoteGuard } from "./remote-guard";
import { Resolver, keyDependencies, knownDigest } from "./resolve";

export type LayerPlan =
  | { layer: string; status: "local" | "remote"; key: LayerKey; digest: OutputDigest }
  | { layer: string; status: "build"; key: LayerKey; reason: BuildReason }
  | { layer: string; status: "merge" }
  | { layer: string; status: "blocked"; waitingFor: string[] };

export interface PlanOptions {
  store: Store;
  /** Remote caches to look in, in order. */
  remote?: Remote | readonly Remote[];
  sources: Omit<SourceContext, "store">;
  onEvent?: (event: BuildEvent) => void;
}

/** What a build would do now, without building, pulling or fetching anything but identities. */
export async function planSystem(graph: LayerGraph, options: PlanOptions): Promise<LayerPlan[]> {
  const onEvent = options.onEvent ?? (() => {});
  const remote = new RemoteGuard({ imports: options.remote, onEvent });
  const resolver = new Resolver({
    store: options.store,
    remote,
    sources: { ...options.sources, store: options.store },
  });
  /** Output digests known without building; a layer absent here must be built first. */
  const digests = new Map<LayerNode, OutputDigest>();
  const mustBuild = new Set<LayerNode>();
  const plans: LayerPlan[] = [];
  const sourceDetail = localSourceChanges(options.store, graph.sources, options.sources.overrides);
  for (const node of graph.order) {
    if (node.layer.kind === "merge") {
      plans.push({ layer: node.name, status: "merge" });
      continue;
    }
    const blockers = keyDependencies(node).length === 0 ? [] : edges(node).filter((dep) => mustBuild.has(dep) || blockedBy(dep, mustBuild));
    if (blockers.length > 0) {
      plans.push({ layer: node.name, status: "blocked", waitingFor: blockers.map((b) => b.name) });
      mustBuild.add(node);
      continue;
    }
    const resolution = await resolver.resolve(node, (dep) => digests.get(dep) ?? unknown(dep));
    const digest = knownDigest(resolution);
    if (resolution.where === "missing" || digest === undefined) {
      mustBuild.add(node);
      const before = lastUse(options.store, graph.system.name, node.name);
      plans.push({ layer: node.name, status: "build", key: resolution.key, reason: describeChanges(before?.inputs, resolution.inputs, sourceDetail) });
    } else {
      digests.set(node, digest);
      plans.push({ layer: node.name, status: resolution.where, key: resolution.key, digest });
    }
  }
  remote.finish();
  return plans;
}

function blockedBy(node: LayerNode, mustBuild: Set<LayerNode>): boolean {
  return node.layer.kind === "merge" && node.runDeps.some((d) => mustBuild.has(d) || blockedBy(d, mustBuild));
}

function unknown(node: LayerNode): never {
  throw new Error(`internal: the output of ${node.name} is not known until it is built`);
}
