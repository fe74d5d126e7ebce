// Reliability: bad definitions. Each case loads a real castle.ts through the loader (esbuild,
// source maps) and validates its graph, and must fail with a stable CASTLE_* code and a message
// that names what to fix and where (file:line); a few go through the bundled CLI as uid 65534,
// which must exit 3. Huge graphs (10 000 layers) must validate and key in < 2 s of CPU each, a chain
// 10 000 deep must not overflow the stack anywhere on the way to a (fully cached) build, and one
// composing more layers than overlayfs can stack is refused at validation.

import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isCastleError } from "@castle/errors";
import { openStore } from "@castle/cache";
import {
  buildGraph, buildRootClosure, buildSystem, keyInputs, layer, layerKey, loadDefinition, planSystem, runClosure, system,
  type Layer, type LayerGraph, type LayerNode,
} from "@castle/graph";
import { cliMissing, describeRun, makeCliHome, runCastle } from "./helpers/cli";
import { lineOf, useTempDirs, writeDefinition } from "./helpers/definitions";

const temp = useTempDirs("castle-rel-defs");
const parent = temp("defs");
const cacheDir = temp("bundles");

/** Loads a definition and validates its graph; resolves with the error it fails with. */
async function failureOf(files: Record<string, string>): Promise<{ error: Error & { code: string; data: Record<string, unknown> }; file: string }> {
  const dir = writeDefinition(parent, files);
  const file = join(dir, "castle.ts");
  try {
    const loaded = await loadDefinition({ path: dir, cacheDir });
    buildGraph(loaded.system);
  } catch (error) {
    expect(isCastleError(error), `not a CastleError: ${String((error as Error)?.stack ?? error)}`).toBe(true);
    return { error: error as Error & { code: string; data: Record<string, unknown> }, file };
  }
  throw new Error("the definition was accepted");
}

const HEAD = 'import { layer, source, system } from "castle";\n';

describe("definitions: graph errors", () => {
  it("reports a cycle with its path, closed and in edge order, and where each layer is declared", async () => {
    const text = `${HEAD}const a = layer({ name: "a", runDeps: ["c"], script: "true" });
const b = layer({ name: "b", runDeps: [a], script: "true" });
const c = layer({ name: "c", buildDeps: [b], script: "true" });
export default system({ name: "cyc", layers: [c] });
`;
    const { error } = await failureOf({ "castle.ts": text });
    expect(error.code).toBe("CASTLE_CYCLE");
    const cycle = error.data.cycle as string[];
    expect(cycle[0]).toBe(cycle.at(-1));
    expect([...cycle].slice(1).sort()).toEqual(["a", "b", "c"]);
    // Every step of the reported path is an edge "depends on": c → b → a → c, in some rotation.
    const dependsOn: Record<string, string> = { c: "b", b: "a", a: "c" };
    for (let i = 0; i + 1 < cycle.length; i++) expect(dependsOn[cycle[i]!]).toBe(cycle[i + 1]);
    expect(error.message).toContain(cycle.join(" → "));
    expect(error.message).toMatch(new RegExp(`^\\S*castle\\.ts:${lineOf(text, `name: "${cycle[0]}"`)}:\\d+: dependency cycle`));
    for (const name of ["a", "b", "c"]) expect(error.message).toMatch(new RegExp(`(\\(|, )${name} at \\S*castle\\.ts:${lineOf(text, `name: "${name}"`)}:`));
  });

  it("reports a layer that depends on itself, and a cycle through a mount", async () => {
    const self = await failureOf({
      "castle.ts": `${HEAD}const a = layer({ name: "a", runDeps: ["a"], script: "true" });
export default system({ name: "self", layers: [a] });
`,
    });
    expect(self.error.code).toBe("CASTLE_CYCLE");
    expect(self.error.data.cycle).toEqual(["a", "a"]);
    const viaMount = await failureOf({
      "castle.ts": `${HEAD}const tool = layer({ name: "tool", runDeps: ["app"], script: "true" });
const app = layer({ name: "app", mounts: { "/opt/tool": tool }, script: "true" });
export default system({ name: "mnt", layers: [app] });
`,
    });
    expect(viaMount.error.code).toBe("CASTLE_CYCLE");
    expect(new Set(viaMount.error.data.cycle as string[])).toEqual(new Set(["app", "tool"]));
  });

  it("names a missing dependency, where it was declared, and a close match", async () => {
    const text = `${HEAD}const compiler = layer({ name: "compiler", script: "true" });
const app = layer({ name: "app", buildDeps: [compiler, "compilr"], script: "true" });
export default system({ name: "miss", layers: [app] });
`;
    const { error, file } = await failureOf({ "castle.ts": text });
    expect(error.code).toBe("CASTLE_MISSING_DEPENDENCY");
    expect(error.message).toContain('"compilr"');
    expect(error.message).toContain('did you mean "compiler"');
    expect(error.message).toContain(`castle.ts:${lineOf(text, 'name: "app"')}:`);
    expect(error.data).toMatchObject({ from: "app", name: "compilr" });
    expect(file).toMatch(/castle\.ts$/);
    // Close matches are found by edits, not by the first letters: a missing letter at the start.
    const aplets = await failureOf({
      "castle.ts": `${HEAD}const applets = layer({ name: "applets", script: "true" });
const sh = layer({ name: "sh", runDeps: [applets, "aplets"], script: "true" });
export default system({ name: "typo", layers: [sh] });
`,
    });
    expect(aplets.error.message).toContain('"aplets", which is not a layer of this system (did you mean "applets"?)');
  });

  it("refuses an option a definition function does not take, naming the closest one and the call site", async () => {
    const cases: Array<[string, string, RegExp]> = [
      [`const a = layer({ name: "a", runDep: [], script: "true" });`, 'name: "a"', /layer\("a"\): unknown option "runDep" \(did you mean "runDeps"\?\); the options are name, script, /],
      [`const a = layer({ name: "a", bulidDeps: [], script: "true" });`, 'name: "a"', /unknown option "bulidDeps" \(did you mean "buildDeps"\?\)/],
      [`const a = layer.import({ name: "a", form: source.inline({}) });`, 'name: "a"', /layer\.import\("a"\): unknown option "form" \(did you mean "from"\?\)/],
      [`const a = layer.merge({ name: "a", layer: [] });`, 'name: "a"', /layer\.merge\("a"\): unknown option "layer" \(did you mean "layers"\?\)/],
      [`export default system({ name: "s", layers: [], entryPoint: ["/bin/sh"] });`, 'name: "s"', /system\("s"\): unknown option "entryPoint" \(did you mean "entrypoint"\?\)/],
      [`const s = source.http({ url: "https://example.invalid/a.tar.gz", sha265: "0" });`, "source.http", /source\.http: unknown option "sha265" \(did you mean "sha256"\?\)/],
      [`const s = source.git({ url: "https://example.invalid/a.git", comit: "0" });`, "source.git", /source\.git: unknown option "comit" \(did you mean "commit"\?\)/],
      [`const s = source.local(".", { ignores: [] });`, "source.local", /source\.local\("\."\): unknown option "ignores" \(did you mean "ignore"\?\)/],
      [`const s = source.inline({}, { nmae: "x" });`, "source.inline", /source\.inline: unknown option "nmae" \(did you mean "name"\?\)/],
      [`const a = layer({ name: "a", script: "true", colour: "red" } as any);`, 'name: "a"', /unknown option "colour"; the options are /],
    ];
    for (const [code, needle, expected] of cases) {
      const tail = code.startsWith("export default") ? "" : `export default system({ name: "t", layers: ["x"] });\n`;
      const text = `${HEAD}// @ts-nocheck\n${code}\n${tail}`;
      const { error } = await failureOf({ "castle.ts": text });
      expect(error.code, code).toBe("CASTLE_DEFINITION");
      expect(error.message, code).toMatch(expected);
      expect(error.message, code).toMatch(new RegExp(`^\\S*castle\\.ts:${lineOf(text, needle)}:\\d+: `));
    }
  });

  it("names a system layer that does not exist", async () => {
    const { error } = await failureOf({
      "castle.ts": `${HEAD}const a = layer({ name: "a", script: "true" });
export default system({ name: "ghosts", layers: [a, "ghost"] });
`,
    });
    expect(error.code).toBe("CASTLE_MISSING_DEPENDENCY");
    expect(error.message).toContain('"ghost"');
  });

  it("points at the line of an `undefined` in a deps array (a layer used before it exists)", async () => {
    const text = `${HEAD}const layers: Record<string, any> = {};
const app = layer({ name: "app", runDeps: [layers.libc], script: "true" });
export default system({ name: "undef", layers: [app] });
`;
    const { error } = await failureOf({ "castle.ts": text });
    // The definition API's own error, as thrown: its code kept and the place said once (the
    // loader used to wrap it as CASTLE_DEFINITION_ERROR, repeating the location three times).
    expect(error.code).toBe("CASTLE_DEFINITION");
    expect(error.message).toMatch(/runDeps\[0\] is undefined/);
    expect(error.message).toContain(`castle.ts:${lineOf(text, 'name: "app"')}:`);
    expect(error.message.split("castle.ts:")).toHaveLength(2);
    for (const [where, code] of [
      ["system", `export default system({ name: "u", layers: [undefined as any] });`],
      ["merge", `const m = layer.merge({ name: "m", layers: [undefined as any] });\nexport default system({ name: "u", layers: [m] });`],
      ["mount", `const a = layer({ name: "a", mounts: { "/src": undefined as any }, script: "true" });\nexport default system({ name: "u", layers: [a] });`],
    ] as const) {
      const other = await failureOf({ "castle.ts": `${HEAD}${code}\n` });
      expect(other.error.code, where).toBe("CASTLE_DEFINITION");
      expect(other.error.message, where).toMatch(/castle\.ts:\d+:\d+: /);
      expect(other.error.message.split("castle.ts:"), where).toHaveLength(2);
    }
  });

  it("refuses two different layers, or two different sources, with one name — naming both places", async () => {
    const text = `${HEAD}const one = layer({ name: "tools", script: "echo 1" });
const two = layer({ name: "tools", script: "echo 2" });
export default system({ name: "dup", layers: [one, two] });
`;
    const layers = await failureOf({ "castle.ts": text });
    expect(layers.error.code).toBe("CASTLE_DUPLICATE_LAYER");
    expect(layers.error.message).toContain(`castle.ts:${lineOf(text, "echo 1")}:`);
    expect(layers.error.message).toContain(`castle.ts:${lineOf(text, "echo 2")}:`);
    const sources = await failureOf({
      "castle.ts": `${HEAD}const s1 = source.inline({ "a": "1" }, { name: "files" });
const s2 = source.inline({ "a": "2" }, { name: "files" });
const a = layer({ name: "a", mounts: { "/one": s1, "/two": s2 }, script: "true" });
export default system({ name: "dups", layers: [a] });
`,
    });
    expect(sources.error.code).toBe("CASTLE_DUPLICATE_SOURCE");
  });

  it("refuses bad mount paths: relative, '/', escaping, given twice, nested, clashing with a cache", async () => {
    const mount = (paths: string[], extra = "") =>
      failureOf({
        "castle.ts": `${HEAD}const s = source.inline({ "f": "x" }, { name: "s" });
const a = layer({ name: "a", mounts: { ${paths.map((p) => `${JSON.stringify(p)}: s`).join(", ")} }, ${extra} script: "true" });
export default system({ name: "mounts", layers: [a] });
`,
      });
    const cases: Array<[string[], string, RegExp, string?]> = [
      [["src"], "CASTLE_DEFINITION", /must be an absolute path/],
      [["/"], "CASTLE_DEFINITION", /cannot be "\/"/],
      [["/a/../.."], "CASTLE_DEFINITION", /cannot be "\/"/],
      [["/src\u0000/x"], "CASTLE_DEFINITION", /must be an absolute path/],
      [["/src", "//src/"], "CASTLE_DEFINITION", /given twice/],
      [["/src", "/src/inner"], "CASTLE_MOUNT_OVERLAP", /\/src and \/src\/inner overlap/],
      [["/var/cache/x"], "CASTLE_MOUNT_OVERLAP", /overlap/, 'caches: { "/var/cache": "c" },'],
      [["/ok"], "CASTLE_DEFINITION", /cwd/, 'cwd: "relative",'],
    ];
    for (const [paths, code, message, extra] of cases) {
      const { error } = await mount(paths, extra);
      expect(error.message.split("castle.ts:"), paths.join(" ")).toHaveLength(2);
      expect(error.code, paths.join(" ")).toBe(code);
      expect(error.message, paths.join(" ")).toMatch(message);
      expect(error.message, paths.join(" ")).toMatch(/castle\.ts:\d+:\d+: /);
    }
  });
});

describe("definitions: code that does not load", () => {
  it("points a throw at the file and line that threw, in castle.ts or a file it imports", async () => {
    const text = `${HEAD}const version = 3;
if (version > 2) throw new Error("unsupported version " + version);
export default system({ name: "t", layers: [layer({ name: "a", script: "true" })] });
`;
    const { error, file } = await failureOf({ "castle.ts": text });
    expect(error.code).toBe("CASTLE_DEFINITION_ERROR");
    expect(error.message).toContain("unsupported version 3");
    expect(error.message).toContain(`${file}:${lineOf(text, "throw new Error")}:`);
    const lib = `export function pkg(name: string) {\n  if (name.length > 3) {\n    throw new TypeError("package name too long: " + name);\n  }\n  return name;\n}\n`;
    const viaImport = await failureOf({
      "castle.ts": `${HEAD}import { pkg } from "./lib/pkg";\nexport default system({ name: pkg("toolong"), layers: ["x"] });\n`,
      "lib/pkg.ts": lib,
    });
    expect(viaImport.error.code).toBe("CASTLE_DEFINITION_ERROR");
    expect(viaImport.error.message).toMatch(new RegExp(`lib/pkg\\.ts:${lineOf(lib, "throw new")}:\\d+: package name too long`));
  });

  it("reports a syntax error at its file, line and column", async () => {
    const text = `${HEAD}const a = layer({ name: "a", script: "true" };\nexport default system({ name: "s", layers: [a] });\n`;
    const { error, file } = await failureOf({ "castle.ts": text });
    expect(error.code).toBe("CASTLE_DEFINITION_SYNTAX");
    expect(error.message).toContain(`${file}:2:`);
    const inImport = await failureOf({ "castle.ts": `${HEAD}import { x } from "./bad";\nexport default x;\n`, "bad.ts": "export const x = {{;\n" });
    expect(inImport.error.code).toBe("CASTLE_DEFINITION_SYNTAX");
    expect(inImport.error.message).toMatch(/bad\.ts:1:\d+: /);
    const missingImport = await failureOf({ "castle.ts": `${HEAD}import { x } from "./nope";\nexport default x;\n` });
    expect(missingImport.error.code).toBe("CASTLE_DEFINITION_SYNTAX");
    expect(missingImport.error.message).toContain("./nope");
  });

  it("refuses a definition that never default-exports a system", async () => {
    for (const body of [
      `export const sys = system({ name: "s", layers: [layer({ name: "a", script: "true" })] });`,
      `export default layer({ name: "a", script: "true" });`,
      `export default { name: "s", layers: [] };`,
      `export default Promise.resolve(system({ name: "s", layers: [layer({ name: "a", script: "true" })] }));`,
    ]) {
      const { error } = await failureOf({ "castle.ts": `${HEAD}${body}\n` });
      expect(error.code, body).toBe("CASTLE_DEFINITION_EXPORT");
      expect(error.message).toMatch(/must `export default system/);
    }
  });

  it("says so when there is no castle.ts", async () => {
    const dir = writeDefinition(parent, { "README": "no definition here\n" });
    await expect(loadDefinition({ path: dir, cacheDir })).rejects.toMatchObject({ code: "CASTLE_DEFINITION_MISSING" });
  });
});

describe.skipIf(cliMissing())("definitions: through the castle CLI as an unprivileged user", () => {
  it("exits 3 with one clear line for a cycle, a syntax error, a missing export, a missing dependency and a graph too deep to stack", async () => {
    const home = makeCliHome();
    const cases: Array<[string, RegExp]> = [
      [`${HEAD}const a = layer({ name: "a", runDeps: ["b"], script: "true" });\nconst b = layer({ name: "b", runDeps: [a], script: "true" });\nexport default system({ name: "c", layers: [b] });\n`, /^castle: .*castle\.ts:[23]:\d+: dependency cycle: (a → b → a|b → a → b) \([ab] at .*castle\.ts:\d+:\d+, [ab] at .*castle\.ts:\d+:\d+\)$/m],
      [`${HEAD}export default system({ name: "s", layers: [layer({ name: "a", runDep: [], script: "true" })] });\n`, /^castle: .*castle\.ts:2:\d+: layer\("a"\): unknown option "runDep" \(did you mean "runDeps"\?\)/m],
      [`${HEAD}export default system({ name: "s", layers: [ };\n`, /^castle: \/.*castle\.ts:2:\d+: /m],
      [`${HEAD}export const s = 1;\n`, /^castle: .*castle\.ts must `export default system/m],
      [`${HEAD}export default system({ name: "s", layers: [layer({ name: "a", runDeps: ["nope"], script: "true" })] });\n`, /^castle: .*castle\.ts:2:\d+: layer a depends on "nope"/m],
      [`${HEAD}let l = layer({ name: "l0", script: "true" });\nfor (let i = 1; i < 600; i++) l = layer({ name: "l" + i, runDeps: [l], script: "true" });\nexport default system({ name: "deep", layers: [l] });\n`, /^castle: .*castle\.ts:3:\d+: layer l500: its build root stacks more than 499 layers/m],
    ];
    for (const [text, expected] of cases) {
      const dir = writeDefinition(parent, { "castle.ts": text });
      const result = await runCastle(home, ["build", dir, "--plain"]);
      expect(result.code, describeRun(result)).toBe(3);
      expect(result.stderr).toMatch(expected);
      expect(result.stderr).not.toMatch(/internal error|    at /);
      expect(result.stdout).toBe("");
    }
  });
});

// ---- huge graphs ----------------------------------------------------------------------------

const N = 10_000;

/** 10 000 layers: each has a run dependency and two build dependencies among earlier layers. */
function wideSystem(): ReturnType<typeof system> {
  const layers: Layer[] = [];
  for (let i = 0; i < N; i++) {
    const picks = i === 0 ? [] : [layers[(i * 7919) % i]!, layers[(i * 104729) % i]!, layers[i - 1]!];
    layers.push(layer({ name: `pkg${i}`, runDeps: picks.slice(0, 1), buildDeps: picks.slice(1), script: `echo ${i} > /pkg${i}` }));
  }
  // The system lists every hundredth layer, as a distro lists its top-level packages.
  return system({ name: "huge", layers: layers.filter((_, i) => i % 100 === 99) });
}

/** A chain N deep: each layer is built on the previous one. */
function chainSystem(depth = N): ReturnType<typeof system> {
  let previous: Layer | undefined;
  for (let i = 0; i < depth; i++) {
    previous = layer({ name: `step${i}`, buildDeps: previous ? [previous] : [], script: `echo ${i} > /step` });
  }
  return system({ name: "chain", layers: [previous!] });
}

/** A chain of `depth` layers, each a run dependency of the next; the system lists the top one. */
function runChainSystem(depth: number): ReturnType<typeof system> {
  let previous: Layer | undefined;
  for (let i = 0; i < depth; i++) {
    previous = layer({ name: `run${i}`, runDeps: previous ? [previous] : [], script: `echo ${i} > /run${i}` });
  }
  return system({ name: "chain", layers: [previous!] });
}

/** Keys of every layer in dependency order, each layer's output standing in as sha256(key). */
function computeKeys(graph: LayerGraph): Map<LayerNode, string> {
  const digests = new Map<LayerNode, string>();
  const keys = new Map<LayerNode, string>();
  for (const node of graph.order) {
    const key = layerKey(keyInputs(node, {
      digestOf: (n) => digests.get(n)!,
      sourceId: () => "unused",
      rootOf: buildRootClosure,
      compositionOf: (n) => runClosure([n]),
    }));
    keys.set(node, key);
    digests.set(node, createHash("sha256").update(key).digest("hex"));
  }
  return keys;
}

/** fn's result and the CPU time it took, in ms: other processes' load on the machine (tests
 * run two files at once, and other work may share the cores) does not count against it. */
function cpuTimed<T>(fn: () => T): [T, number] {
  const before = process.cpuUsage();
  const result = fn();
  const used = process.cpuUsage(before);
  return [result, (used.user + used.system) / 1000];
}

describe("definitions: huge graphs", () => {
  it("validates and keys 10 000 layers in well under 2 s each", () => {
    const sys = wideSystem();
    const [graph, validateMs] = cpuTimed(() => buildGraph(sys));
    expect(graph.order).toHaveLength(N);
    const [keys, keyMs] = cpuTimed(() => computeKeys(graph));
    expect(new Set(keys.values()).size).toBe(N);
    expect(validateMs).toBeLessThan(2000);
    expect(keyMs).toBeLessThan(2000);
  });

  it("finds a cycle closing over 10 000 layers without overflowing the stack", () => {
    const layers: Layer[] = [layer({ name: "l0", runDeps: [`l${N - 1}`], script: "true" })];
    for (let i = 1; i < N; i++) layers.push(layer({ name: `l${i}`, runDeps: [layers[i - 1]!], script: "true" }));
    const [thrown, ms] = cpuTimed(() => {
      try {
        buildGraph(system({ name: "ring", layers: [layers[N - 1]!] }));
      } catch (error) {
        return error;
      }
      return undefined;
    });
    expect(thrown).toMatchObject({ code: "CASTLE_CYCLE" });
    expect(((thrown as { data: { cycle: string[] } }).data.cycle)).toHaveLength(N + 1);
    expect(ms).toBeLessThan(2000);
  });

  it("validates, keys, plans and (fully cached) builds a chain 10 000 deep without a stack overflow", async () => {
    const graph = buildGraph(chainSystem());
    expect(graph.order).toHaveLength(N);
    expect(runClosure(graph.roots)).toHaveLength(1);
    const [keys, keyMs] = cpuTimed(() => computeKeys(graph));
    expect(keyMs).toBeLessThan(2000);

    // A store that already holds every layer (all pointing at one empty tree): the no-op rebuild.
    const store = openStore(temp("chain-store"));
    const staging = await store.stage("empty");
    const empty = await store.commit(staging, "e".repeat(64), { name: "empty", buildMs: 0, origin: "built" });
    const records = new Map<LayerNode, string>();
    // Keys again, now with the real output digest (every layer's tree is the empty tree).
    for (const node of graph.order) {
      const key = layerKey(keyInputs(node, { digestOf: () => empty.digest, sourceId: () => "unused", rootOf: buildRootClosure, compositionOf: (n) => runClosure([n]) }));
      records.set(node, key);
      writeFileSync(store.recordPath(key), JSON.stringify({ ...empty, key, name: node.name }));
    }
    expect(keys.size).toBe(records.size);
    const plans = await planSystem(graph, { store, sources: { overrides: new Map(), env: {} } });
    expect(plans.filter((p) => p.status !== "local")).toEqual([]);
    // The scheduler resolves digests recursively; before the fix in graph/src/schedule/resolve.ts
    // a chain of ~2 000 cached layers overflowed the stack here.
    const events: string[] = [];
    const outcome = await buildSystem(graph, {
      store,
      sandbox: { spawn: () => { throw new Error("nothing should be built"); } },
      onEvent: (event) => events.push(event.type),
      sources: { overrides: new Map(), env: {} },
    });
    // Only the top layer is needed (the rest are build dependencies of cached layers), but its
    // key needs every digest beneath it.
    expect(outcome.stats).toMatchObject({ cached: 1, built: 0, failed: 0 });
    expect(events.filter((type) => type === "skipped")).toHaveLength(N - 1);
    expect(outcome.layers.map((l) => l.key)).toEqual([records.get(graph.roots[0]!)]);
  });

  // overlayfs stacks at most 500 lower directories, so no build root, mount or system can compose
  // more layers than that: a deep chain of run dependencies is refused when the graph is
  // validated (quickly: each count stops at the limit), before anything is built. At the limit,
  // validating and keying stay fast (a key lists every layer composed beneath its build root).
  it("refuses a chain of 10 000 run dependencies at validation, fast, naming the layer and the limit", () => {
    const [error, ms] = cpuTimed(() => {
      try {
        buildGraph(runChainSystem(N));
      } catch (caught) {
        return caught as Error & { code: string; data: Record<string, unknown> };
      }
      throw new Error("the chain was accepted");
    });
    expect(ms).toBeLessThan(2000);
    expect(error.code).toBe("CASTLE_TOO_MANY_LAYERS");
    expect(error.message).toMatch(/^(.*: )?layer run500: its build root stacks more than 499 layers, more than overlayfs can mount \(500 lower directories\)$/);
  });

  it("accepts a run-dependency chain as deep as the sandbox can stack, and keys it fast", () => {
    const deepest = buildGraph(runChainSystem(500));
    const [keys, keyMs] = cpuTimed(() => computeKeys(deepest));
    expect(keys.size).toBe(500);
    expect(keyMs).toBeLessThan(2000);
    expect(() => buildGraph(runChainSystem(501))).toThrow(/layer run500: its build root stacks more than 499 layers/);
    // 501 layers side by side: each builds on nothing, but the system cannot stack them all.
    const wide = Array.from({ length: 501 }, (_, i) => layer({ name: `side${i}`, script: "true" }));
    expect(() => buildGraph(system({ name: "side", layers: wide }))).toThrow(/system side stacks more than 500 layers/);
  });
});

describe("definitions: a huge graph through the loader", () => {
  it("loads a castle.ts that declares 10 000 layers in a loop, and validates it", async () => {
    const dir = writeDefinition(parent, {
      "castle.ts": `${HEAD}const all = [];
for (let i = 0; i < ${N}; i++) all.push(layer({ name: "p" + i, runDeps: i ? [all[Math.floor(i / 2)]] : [], buildDeps: i > 1 ? [all[i - 1]] : [], script: "echo " + i }));
export default system({ name: "loop", layers: [all[all.length - 1]] });
`,
    });
    mkdirSync(join(dir, "unused"), { recursive: true });
    const loaded = await loadDefinition({ path: dir, cacheDir });
    const [graph, ms] = cpuTimed(() => buildGraph(loaded.system));
    expect(ms).toBeLessThan(2000);
    expect(graph.order).toHaveLength(N);
  });
});
