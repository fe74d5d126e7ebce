// Owns turning a System into a validated LayerGraph: every reachable layer once, names unique,
// string references resolved, no cycles, mount paths that do not overlap, sources unique by name,
// and nothing composed of more layers than the sandbox can stack (stack-depth.ts).

import { isDeepStrictEqual } from "node:util";
import { isLayer, type Layer, type LayerRef, type Source, type System } from "../types";
import { cycleError, duplicateNameError, missingDependencyError, mountClashError } from "./errors";
import { checkStackDepth } from "./stack-depth";

export type MountTarget = { kind: "source"; source: Source } | { kind: "layer"; node: LayerNode };

export interface LayerNode {
  readonly layer: Layer;
  readonly name: string;
  readonly buildDeps: LayerNode[];
  readonly runDeps: LayerNode[];
  readonly mounts: { path: string; target: MountTarget }[];
}

export interface LayerGraph {
  readonly system: System;
  /** Every layer, dependencies before dependents. */
  readonly order: LayerNode[];
  readonly byName: ReadonlyMap<string, LayerNode>;
  /** The system's layers, as listed. */
  readonly roots: LayerNode[];
  /** Every source mounted or imported anywhere, by name. */
  readonly sources: ReadonlyMap<string, Source>;
}

/** Validates a system and returns its graph, or throws a GraphError that says what to fix. */
export function buildGraph(system: System): LayerGraph {
  const layers = collectLayers(system);
  const nodes = new Map<string, LayerNode>();
  for (const layer of layers.values()) {
    nodes.set(layer.name, { layer, name: layer.name, buildDeps: [], runDeps: [], mounts: [] });
  }
  const resolve = (from: Layer, ref: LayerRef): LayerNode => {
    const name = typeof ref === "string" ? ref : ref.name;
    const node = nodes.get(name);
    if (!node) throw missingDependencyError(from.name, name, from.definedAt, [...nodes.keys()]);
    return node;
  };
  const sources = new Map<string, Source>();
  for (const node of nodes.values()) {
    const { layer } = node;
    node.buildDeps.push(...unique(layer.buildDeps.map((r) => resolve(layer, r))));
    node.runDeps.push(...unique(layer.runDeps.map((r) => resolve(layer, r))));
    for (const [path, target] of Object.entries(layer.mounts)) {
      if (isLayer(target)) node.mounts.push({ path, target: { kind: "layer", node: resolve(layer, target) } });
      else {
        addSource(sources, target);
        node.mounts.push({ path, target: { kind: "source", source: target } });
      }
    }
    if (layer.kind === "import") addSource(sources, layer.from);
    checkMounts(node);
  }
  const order = topologicalOrder([...nodes.values()]);
  const roots = unique(system.layers.map((ref) => {
    const name = typeof ref === "string" ? ref : ref.name;
    const node = nodes.get(name);
    if (!node) throw missingDependencyError(`system ${system.name}`, name, system.definedAt, [...nodes.keys()]);
    return node;
  }));
  checkStackDepth(order, roots, system);
  return { system, order, byName: nodes, roots, sources };
}

/** Every layer object reachable from the system, by name; two different objects may not share one. */
function collectLayers(system: System): Map<string, Layer> {
  const found = new Map<string, Layer>();
  const pending: LayerRef[] = [...system.layers];
  while (pending.length > 0) {
    const ref = pending.pop()!;
    if (typeof ref === "string") continue;
    const existing = found.get(ref.name);
    if (existing === ref) continue;
    if (existing) throw duplicateNameError("layer", ref.name, [existing.definedAt, ref.definedAt]);
    found.set(ref.name, ref);
    pending.push(...ref.buildDeps, ...ref.runDeps);
    for (const target of Object.values(ref.mounts)) if (isLayer(target)) pending.push(target);
  }
  return found;
}

function addSource(sources: Map<string, Source>, source: Source): void {
  const existing = sources.get(source.name);
  if (existing && existing !== source && !isDeepStrictEqual(existing.spec, source.spec)) {
    throw duplicateNameError("source", source.name, [existing.definedAt, source.definedAt]);
  }
  if (!existing) sources.set(source.name, source);
}

function checkMounts(node: LayerNode): void {
  const paths = [...node.mounts.map((m) => m.path), ...Object.keys(node.layer.kind === "build" ? node.layer.build.caches : {})].sort();
  for (let i = 1; i < paths.length; i++) {
    const a = paths[i - 1]!;
    const b = paths[i]!;
    if (a === b || b.startsWith(`${a}/`)) throw mountClashError(node.name, a, b, node.layer.definedAt);
  }
}

/** Dependencies first; throws CASTLE_CYCLE with the cycle's path when there is one. Iterative,
 * so a chain of ten thousand layers does not exhaust the stack. */
function topologicalOrder(nodes: LayerNode[]): LayerNode[] {
  const state = new Map<LayerNode, "visiting" | "done">();
  const order: LayerNode[] = [];
  for (const start of nodes) {
    if (state.has(start)) continue;
    const path: { node: LayerNode; next: LayerNode[] }[] = [{ node: start, next: edges(start).reverse() }];
    state.set(start, "visiting");
    while (path.length > 0) {
      const top = path[path.length - 1]!;
      const dep = top.next.pop();
      if (dep === undefined) {
        path.pop();
        state.set(top.node, "done");
        order.push(top.node);
        continue;
      }
      const seen = state.get(dep);
      if (seen === "done") continue;
      if (seen === "visiting") {
        const from = path.findIndex((p) => p.node === dep);
        throw cycleError([...path.slice(from).map((p) => p.node), dep].map((node) => ({ name: node.name, definedAt: node.layer.definedAt })));
      }
      state.set(dep, "visiting");
      path.push({ node: dep, next: edges(dep).reverse() });
    }
  }
  return order;
}

/** Every node this one needs before it can be built. */
export function edges(node: LayerNode): LayerNode[] {
  const out = [...node.buildDeps, ...node.runDeps];
  for (const mount of node.mounts) if (mount.target.kind === "layer") out.push(mount.target.node);
  return out;
}

/**
 * The layers composed for `roots`, bottom first: each layer after its run dependencies, in the
 * order given; later layers take precedence. Merge layers contribute only their dependencies.
 * With `limit`, stops as soon as more than `limit` layers are found (for counting cheaply).
 */
export function runClosure(roots: readonly LayerNode[], limit = Infinity): LayerNode[] {
  const seen = new Set<LayerNode>();
  const out: LayerNode[] = [];
  for (const root of roots) {
    if (seen.has(root)) continue;
    seen.add(root);
    const path: { node: LayerNode; next: number }[] = [{ node: root, next: 0 }];
    while (path.length > 0) {
      const top = path[path.length - 1]!;
      const dep = top.node.runDeps[top.next++];
      if (dep === undefined) {
        path.pop();
        if (top.node.layer.kind !== "merge" && out.push(top.node) > limit) return out;
      } else if (!seen.has(dep)) {
        seen.add(dep);
        path.push({ node: dep, next: 0 });
      }
    }
  }
  return out;
}

/** The layers beneath a layer's build root: its build and run dependencies with their run deps. */
export function buildRootClosure(node: LayerNode): LayerNode[] {
  return runClosure([...node.buildDeps, ...node.runDeps]);
}

function unique<T>(items: T[]): T[] {
  return [...new Set(items)];
}
