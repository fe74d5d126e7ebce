// Owns refusing, when the graph is validated, a system that the sandbox could not stack: overlayfs
// mounts at most SPEC_LIMITS.lowers lower directories, so a layer's build root (one lower is the
// mount points' directory), each layer mounted somewhere, and the system itself may compose at
// most that many layers. Found here, the error names the layer before anything is built; found
// by the sandbox, it would come after building everything beneath. Each count stops as soon as
// it passes the limit, so a chain of 10 000 layers is checked in O(layers × limit).

import { SPEC_LIMITS } from "@castle/sandbox";
import { GraphError } from "./errors";
import { runClosure, type LayerNode } from "./graph";
import type { System } from "../types";

/** Layers a build root may compose: the sandbox adds one lower of its own (mount points). */
export const MAX_BUILD_ROOT_LAYERS = SPEC_LIMITS.lowers - 1;
/** Layers a mounted layer or a running system may compose. */
export const MAX_COMPOSED_LAYERS = SPEC_LIMITS.lowers;

export function checkStackDepth(order: readonly LayerNode[], roots: readonly LayerNode[], system: Pick<System, "name" | "definedAt">): void {
  for (const node of order) {
    const { layer } = node;
    if (layer.kind === "build" && exceeds([...node.buildDeps, ...node.runDeps], MAX_BUILD_ROOT_LAYERS)) {
      throw tooDeep(`layer ${node.name}: its build root`, MAX_BUILD_ROOT_LAYERS, layer.definedAt);
    }
    for (const mount of node.mounts) {
      if (mount.target.kind === "layer" && exceeds([mount.target.node], MAX_COMPOSED_LAYERS)) {
        throw tooDeep(`layer ${node.name}: its mount ${mount.path}`, MAX_COMPOSED_LAYERS, layer.definedAt);
      }
    }
  }
  // The site is read only on failure: formatting it maps the stack through the source map.
  if (exceeds(roots, MAX_COMPOSED_LAYERS)) throw tooDeep(`system ${system.name}`, MAX_COMPOSED_LAYERS, system.definedAt);
}

/** Whether the run closure of `from` holds more than `limit` layers (counting stops there). */
function exceeds(from: readonly LayerNode[], limit: number): boolean {
  return runClosure(from, limit).length > limit;
}

function tooDeep(what: string, limit: number, site: string | undefined): GraphError {
  return new GraphError(
    "CASTLE_TOO_MANY_LAYERS",
    `${site ? `${site}: ` : ""}${what} stacks more than ${limit} layers, more than overlayfs can mount (${SPEC_LIMITS.lowers} lower directories)`,
    {
      data: { what, limit, site },
      hint: "build fewer, larger layers beneath it: a layer that builds several packages into one tree counts once",
    },
  );
}
