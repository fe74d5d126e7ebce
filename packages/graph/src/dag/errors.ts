// Owns the graph errors: cycles, missing dependencies, duplicate names, clashing mounts.

import { CastleError } from "@castle/errors";
import { didYouMean } from "../define/closest";

export class GraphError extends CastleError {}

/** The cycle's path (first layer again at the end), each with where it was declared. */
export function cycleError(path: { name: string; definedAt: string | undefined }[]): GraphError {
  const names = path.map((p) => p.name);
  const site = path[0]?.definedAt;
  const declared = path.slice(1).map((p) => `${p.name} at ${p.definedAt ?? "an unknown place"}`);
  return new GraphError("CASTLE_CYCLE", `${site ? `${site}: ` : ""}dependency cycle: ${names.join(" → ")} (${declared.join(", ")})`, {
    data: { cycle: names, sites: path.map((p) => p.definedAt) },
    hint: "a layer cannot depend on itself, directly or through others; remove one of these edges",
  });
}

export function missingDependencyError(from: string, name: string, site: string | undefined, known: string[]): GraphError {
  return new GraphError(
    "CASTLE_MISSING_DEPENDENCY",
    `${site ? `${site}: ` : ""}layer ${from} depends on "${name}", which is not a layer of this system${didYouMean(name, known)}`,
    { data: { from, name, site } },
  );
}

export function duplicateNameError(kind: "layer" | "source", name: string, sites: (string | undefined)[]): GraphError {
  return new GraphError(
    kind === "layer" ? "CASTLE_DUPLICATE_LAYER" : "CASTLE_DUPLICATE_SOURCE",
    `two different ${kind}s are named "${name}" (${sites.map((s) => s ?? "unknown place").join(" and ")}); ${kind} names must be unique`,
    { data: { name, sites } },
  );
}

export function mountClashError(layer: string, a: string, b: string, site: string | undefined): GraphError {
  return new GraphError(
    "CASTLE_MOUNT_OVERLAP",
    `${site ? `${site}: ` : ""}layer ${layer}: mount paths ${a} and ${b} overlap; mounts must not be nested`,
    { data: { layer, paths: [a, b], site } },
  );
}
