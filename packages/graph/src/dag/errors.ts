// Owns the graph errors: cycles, missing dependencies, duplicate names, clashing mounts.

import { CastleError } from "@castle/errors";

export class GraphError extends CastleError {}

export function cycleError(path: string[]): GraphError {
  return new GraphError("CASTLE_CYCLE", `dependency cycle: ${path.join(" → ")}`, {
    data: { cycle: path },
    hint: "a layer cannot depend on itself, directly or through others; remove one of these edges",
  });
}

export function missingDependencyError(from: string, name: string, site: string | undefined, known: string[]): GraphError {
  const close = known.filter((k) => k.toLowerCase().includes(name.toLowerCase().slice(0, 3))).slice(0, 3);
  return new GraphError(
    "CASTLE_MISSING_DEPENDENCY",
    `${site ? `${site}: ` : ""}layer ${from} depends on "${name}", which is not a layer of this system` +
      (close.length ? ` (did you mean ${close.map((c) => `"${c}"`).join(", ")}?)` : ""),
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
