// Owns a layer's cache key: the sha256 of everything that can change its output — its script,
// environment, working dir, network, shell, cache paths, the output digests of the layers in its
// build root (so an identical rebuild of a dependency does not rebuild dependents), what is
// mounted where, and the identity of imported sources. No host paths, no names, no core counts.

import type { LayerKey, OutputDigest } from "@castle/cache";
import type { LayerNode } from "../dag/graph";
import { canonicalJson, sha256Hex } from "./canonical";

/** Bump when the meaning of a build changes (sandbox defaults, default env...). */
export const BUILD_SCHEMA = "castle-build-1";

/** A dependency as the key sees it: its output digest, with its name for explanations only. */
export interface KeyedDep {
  name: string;
  digest: OutputDigest;
}

export type KeyedMount =
  | { path: string; kind: "source"; name: string; id: string }
  | { path: string; kind: "layer"; name: string; layers: KeyedDep[] };

/** Everything a key covers, in a form `explain` can compare field by field. */
export interface KeyInputs {
  schema: string;
  kind: "build" | "import" | "merge";
  platform: string;
  script?: string;
  shell?: string[];
  env?: Record<string, string>;
  cwd?: string;
  network?: string;
  cachePaths?: string[];
  root?: KeyedDep[];
  mounts?: KeyedMount[];
  from?: { name: string; id: string };
}

/** The environment every build starts from; part of the key (unlike job counts, which are not). */
export const DEFAULT_BUILD_ENV: Readonly<Record<string, string>> = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  HOME: "/root",
  TMPDIR: "/tmp",
  LANG: "C.UTF-8",
  SOURCE_DATE_EPOCH: "315532800",
};

export interface KeyContext {
  /** Output digest of a layer that is already resolved. */
  digestOf(node: LayerNode): OutputDigest;
  /** Identity of a source (pin or content digest), computed by the sources module. */
  sourceId(name: string): string;
  /** The layers composed beneath a layer's build root, bottom first. */
  rootOf(node: LayerNode): LayerNode[];
  /** The layers composed for a layer mounted somewhere. */
  compositionOf(node: LayerNode): LayerNode[];
}

export function keyInputs(node: LayerNode, ctx: KeyContext): KeyInputs {
  const { layer } = node;
  const base = { schema: BUILD_SCHEMA, kind: layer.kind, platform: `${process.arch}-linux` };
  if (layer.kind === "import") {
    return { ...base, from: { name: layer.from.name, id: ctx.sourceId(layer.from.name) } };
  }
  if (layer.kind === "merge") return base;
  const { build } = layer;
  const keyed = (n: LayerNode): KeyedDep => ({ name: n.name, digest: ctx.digestOf(n) });
  return {
    ...base,
    script: build.script,
    shell: build.shell,
    env: { ...DEFAULT_BUILD_ENV, ...build.env },
    cwd: build.cwd,
    network: build.network,
    cachePaths: Object.keys(build.caches).sort(),
    root: ctx.rootOf(node).map(keyed),
    mounts: node.mounts
      .map((m): KeyedMount =>
        m.target.kind === "source"
          ? { path: m.path, kind: "source", name: m.target.source.name, id: ctx.sourceId(m.target.source.name) }
          : { path: m.path, kind: "layer", name: m.target.node.name, layers: ctx.compositionOf(m.target.node).map(keyed) },
      )
      .sort((a, b) => (a.path < b.path ? -1 : 1)),
  };
}

/** The key: a hash of the inputs with every name removed (names do not change outputs). */
export function layerKey(inputs: KeyInputs): LayerKey {
  return sha256Hex(keyMaterial(inputs));
}

/** The exact text a key hashes: the canonical JSON of the inputs without names. */
export function keyMaterial(inputs: KeyInputs): string {
  return canonicalJson(stripNames(inputs));
}

function stripNames(inputs: KeyInputs): unknown {
  return {
    ...inputs,
    root: inputs.root?.map((d) => d.digest),
    mounts: inputs.mounts?.map((m) =>
      m.kind === "source" ? { path: m.path, kind: m.kind, id: m.id } : { path: m.path, kind: m.kind, layers: m.layers.map((d) => d.digest) },
    ),
    from: inputs.from?.id,
  };
}
