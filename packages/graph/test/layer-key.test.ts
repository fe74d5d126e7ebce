// Golden test of layer keys: a fixed definition gives fixed keys, written out literally. A change
// to hashing (canonical JSON, the schema, defaults, what a key covers) silently invalidates every
// local and remote cache; this test makes it loud. Also asserted: keys hold no names (renaming a
// layer or a source keeps every key) and no core counts (nothing of the machine but its arch).

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openStore, removeTree } from "@castle/cache";
import { BUILD_SCHEMA, keyInputs, keyMaterial, layerKey } from "../src/hash/layer-key";
import { buildGraph, buildRootClosure, layer, runClosure, source, sourceIdentity, system, type LayerNode } from "../src/index";

const SHA = "7d5b0b6062521e4627e099e4c9dc8248d32a30285e959b7eecaa780cf8cfd4a4";
const COMMIT = "0123456789abcdef0123456789abcdef01234567";

/** One of each kind of layer and source; `prefix` renames every layer and source. */
function definition(prefix = "") {
  const n = (name: string) => `${prefix}${name}`;
  const tarball = source.http({ name: n("musl-src"), url: "https://example.org/musl-1.2.3.tar.gz", sha256: SHA });
  const file = source.http({ name: n("patch"), url: "https://example.org/fix.patch", sha256: SHA, extract: false });
  const repo = source.git({ name: n("app-src"), url: "https://example.org/app.git", commit: COMMIT, subdir: "src" });
  const notes = source.inline({ "README": "hello\n", "bin/run": { content: "#!/bin/sh\n", mode: 0o755 } }, { name: n("notes") });
  const base = layer.import({ name: n("base"), from: repo });
  const tools = layer({ name: n("tools"), runDeps: [base], script: "echo tools > /t" });
  const libc = layer({
    name: n("libc"),
    buildDeps: [tools],
    runDeps: [base],
    mounts: { "/src/musl": tarball, "/src/patch": file, "/notes": notes },
    env: { CFLAGS: "-O2" },
    cwd: "/build",
    network: "host",
    caches: { "/build": n("obj") },
    shell: ["/bin/sh", "-ec"],
    script: "make && make install",
  });
  const group = layer.merge({ name: n("group"), layers: [libc, tools] });
  const app = layer({ name: n("app"), runDeps: [group], mounts: { "/opt/tools": tools }, script: "cp /opt/tools/t /app" });
  return system({ name: n("golden"), layers: [app] });
}

/** Keys of every layer, with fixed output digests standing in for what builds would give. */
function keys(prefix = ""): Record<string, string> {
  const graph = buildGraph(definition(prefix));
  const digestOf = (node: LayerNode) => sha(`output of ${node.name.slice(prefix.length)}`);
  const identities: Record<string, string> = {
    "musl-src": `http:${SHA}:x1:s1`,
    patch: `http:${SHA}:x0:s0:fix.patch`,
    "app-src": `git:${COMMIT}:src`,
    notes: `inline:${sha("notes")}`,
  };
  const out: Record<string, string> = {};
  for (const node of graph.order) {
    const inputs = keyInputs(node, {
      digestOf,
      sourceId: (name) => identities[name.slice(prefix.length)]!,
      rootOf: buildRootClosure,
      compositionOf: (n) => runClosure([n]),
    });
    out[node.name.slice(prefix.length)] = layerKey(inputs);
  }
  return out;
}

function sha(text: string): string {
  return layerKey({ schema: text, kind: "merge", platform: "" });
}

describe("source identities (what a key holds for a source)", () => {
  const dir = mkdtempSync(join(tmpdir(), "castle-golden-"));
  afterAll(() => removeTree(dir));

  it("are pins for http and git sources and a content digest for inline ones, unchanged", async () => {
    const ctx = { store: openStore(dir), overrides: new Map<string, string>(), env: {} };
    const graph = buildGraph(definition());
    const ids: Record<string, string> = {};
    for (const [name, src] of graph.sources) ids[name] = (await sourceIdentity(src, ctx)).id;
    expect(ids).toEqual({
      "musl-src": `http:${SHA}:x1:s1`,
      patch: `http:${SHA}:x0:s0:fix.patch`,
      "app-src": `git:${COMMIT}:src`,
      notes: "inline:4c770e8974afbd968c60d95c791e2cfd68d4664b9e8ef23d7991d545eb9ebe98",
    });
  });
});

describe.skipIf(process.arch !== "x64")("layer keys (x64: the platform is part of a key)", () => {
  it("a fixed definition gives these keys, forever (a change invalidates every cache)", () => {
    expect(BUILD_SCHEMA).toBe("castle-build-1");
    expect(keys()).toEqual(GOLDEN);
  });

  it("hold no names: renaming every layer and source keeps every key", () => {
    expect(keys("renamed-")).toEqual(keys());
    const graph = buildGraph(definition("zzname-"));
    for (const node of graph.order) {
      const material = keyMaterial(keyInputs(node, {
        digestOf: () => "0".repeat(64),
        sourceId: () => "inline:x",
        rootOf: buildRootClosure,
        compositionOf: (n) => runClosure([n]),
      }));
      expect(material, node.name).not.toContain("zzname-");
    }
  });

  it("hold no core counts: nothing in a key's material names this machine but its arch", () => {
    const graph = buildGraph(definition());
    const material = graph.order.map((node) => keyMaterial(keyInputs(node, {
      digestOf: () => "0".repeat(64),
      sourceId: () => "inline:x",
      rootOf: buildRootClosure,
      compositionOf: (n) => runClosure([n]),
    }))).join("\n");
    expect(material).not.toMatch(/MAKEFLAGS|CASTLE_JOBS|"jobs"|-j\d/);
    expect(material).not.toContain(process.cwd());
    expect(material).toContain('"platform":"x64-linux"');
  });
});
if (process.arch !== "x64") console.warn(`skipping the golden layer keys: they are written for x64, this is ${process.arch}`);

const GOLDEN: Record<string, string> = {
  app: "24588a585e3465e0cf19f6f1eba231235c5f9380c94263f86559746559b69b34",
  base: "e52987ccc348485ae1630ce7746a641e13bf6045d94f1e7bb926b3e3c0e5059f",
  group: "442a3eff0534b5feb3ebb7ee73df591262234ba2ac8409de3707135a85dfa748",
  libc: "d46a57917a42a87b1e194ea9494c4575d4cb8cf2e33c4ba45c81a384218251ad",
  tools: "574d5dd3c1baadca0cc2077c374f2b7e9b694b362b7996887f0a860fbe04c3ae",
};
