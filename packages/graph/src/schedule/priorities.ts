// Owns build priorities: the longest remaining path through the graph, weighted by recorded build
// times, so the layers that hold up the most work start first.

import type { LayerNode } from "../dag/graph";
import { edges } from "../dag/graph";

/** Priority per layer: its own expected time plus the longest chain of dependents after it. */
export function criticalPaths(order: readonly LayerNode[], expectedMs: (node: LayerNode) => number): Map<LayerNode, number> {
  const dependents = new Map<LayerNode, LayerNode[]>();
  for (const node of order) {
    for (const dep of edges(node)) {
      const list = dependents.get(dep) ?? [];
      list.push(node);
      dependents.set(dep, list);
    }
  }
  const path = new Map<LayerNode, number>();
  for (let i = order.length - 1; i >= 0; i--) {
    const node = order[i]!;
    let longest = 0;
    for (const after of dependents.get(node) ?? []) longest = Math.max(longest, path.get(after) ?? 0);
    path.set(node, expectedMs(node) + longest);
  }
  return path;
}
