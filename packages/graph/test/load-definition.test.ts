// Tests for the definition loader: bundling castle.ts with relative imports, "castle" resolved
// to this Castle's API, the compiled-definition cache, and errors that point at file:line.

import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { buildGraph } from "../src/dag/graph";
import { BUNDLES } from "../src/define/site";
import { loadDefinition } from "../src/load/load-definition";

const temps: string[] = [];
function project(files: Record<string, string>): { dir: string; cacheDir: string } {
  const dir = mkdtempSync(join(tmpdir(), "castle-def-"));
  temps.push(dir);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  const cacheDir = join(dir, ".cache");
  mkdirSync(cacheDir);
  return { dir, cacheDir };
}
afterEach(() => {
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const good = {
  "castle.ts": `import { layer, source, system } from "castle";
import { base } from "./lib/base";
const hello = layer({ name: "hello", runDeps: [base], script: "echo hi > /hello" });
export default system({ name: "demo", layers: [hello] });
`,
  "lib/base.ts": `import { layer, source } from "castle";
export const base = layer.import({ name: "base", from: source.local("../rootfs") });
`,
};

describe("loadDefinition", () => {
  it("loads a definition with relative imports and records where layers were declared", async () => {
    const { dir, cacheDir } = project(good);
    const loaded = await loadDefinition({ path: dir, cacheDir });
    expect(loaded.system.name).toBe("demo");
    expect(loaded.cached).toBe(false);
    const hello = loaded.system.layers[0] as unknown as { name: string; definedAt?: string; runDeps: { from: { spec: { dir: string } } }[] };
    expect(hello.name).toBe("hello");
    expect(hello.definedAt).toMatch(/castle\.ts:3:\d+$/);
    // source.local resolves relative to the file that declares it (lib/), not the cwd.
    expect(hello.runDeps[0]!.from.spec.dir).toBe(join(dir, "rootfs"));
  });

  it("bundles as CommonJS, and maps a site through the source map only when it is read", async () => {
    const { dir, cacheDir } = project(good);
    const loaded = await loadDefinition({ path: dir, cacheDir });
    expect(readdirSync(cacheDir).filter((f) => /\.[cm]js$/.test(f))).toEqual([expect.stringMatching(/\.cjs$/)]);
    buildGraph(loaded.system);
    const bundles = (globalThis as unknown as Record<symbol, Map<string, { sourceMap: string; parsed?: unknown }>>)[BUNDLES]!;
    const bundle = [...bundles.values()].find((b) => b.sourceMap.startsWith(cacheDir))!;
    expect(bundle.parsed).toBeUndefined();
    expect(loaded.system.definedAt).toMatch(/castle\.ts:4:\d+$/);
    expect(bundle.parsed).toBeTruthy();
  });

  it("bundles a definition that needs ES modules as one: top-level await, import.meta", async () => {
    const { dir, cacheDir } = project({
      ...good,
      "castle.ts": good["castle.ts"].replace(
        'export default system({ name: "demo", layers: [hello] });',
        'const name = await Promise.resolve("awaited");\nexport default system({ name, layers: [hello], entrypoint: [import.meta.url] });',
      ),
    });
    const loaded = await loadDefinition({ path: dir, cacheDir });
    expect(loaded.system.name).toBe("awaited");
    expect(loaded.system.entrypoint[0]).toMatch(/^file:\/\/.*\.mjs$/);
    expect(readdirSync(cacheDir).filter((f) => /\.[cm]js$/.test(f))).toEqual([expect.stringMatching(/\.mjs$/)]);
    const meta = project({ ...good, "castle.ts": good["castle.ts"].replace("layers: [hello] }", "layers: [hello], entrypoint: [import.meta.url, import.meta.dirname] }") });
    const cjs = await loadDefinition({ path: meta.dir, cacheDir: meta.cacheDir });
    expect(cjs.system.entrypoint[0]).toMatch(/^file:\/\/.*\.cjs$/);
    expect(cjs.system.entrypoint[1]).toBe(meta.cacheDir);
  });

  it("reuses the compiled bundle until an input changes", async () => {
    const { dir, cacheDir } = project(good);
    await loadDefinition({ path: dir, cacheDir });
    expect((await loadDefinition({ path: dir, cacheDir })).cached).toBe(true);
    writeFileSync(join(dir, "lib/base.ts"), good["lib/base.ts"].replace('"base"', '"base2"'));
    const third = await loadDefinition({ path: dir, cacheDir });
    expect(third.cached).toBe(false);
  });

  it("reports a syntax error at its file and line", async () => {
    const { dir, cacheDir } = project({ "castle.ts": 'import { system } from "castle";\nexport default system({ name: "x", layers: [ });\n' });
    await expect(loadDefinition({ path: dir, cacheDir })).rejects.toMatchObject({
      code: "CASTLE_DEFINITION_SYNTAX",
      message: expect.stringMatching(/castle\.ts:2:\d+: /),
    });
  });

  it("reports an error thrown by the definition at the user's line", async () => {
    const { dir, cacheDir } = project({
      "castle.ts": 'import { layer, system } from "castle";\n\nconst x = layer({ name: "bad name!", script: "true" });\nexport default system({ name: "x", layers: [x] });\n',
    });
    await expect(loadDefinition({ path: dir, cacheDir })).rejects.toMatchObject({
      code: "CASTLE_DEFINITION",
      message: expect.stringMatching(/castle\.ts:3:\d+: layer name "bad name!" is invalid/),
    });
    const throwing = project({ "castle.ts": 'import { system } from "castle";\n\nthrow new Error("boom");\nexport default system({ name: "x", layers: [] });\n' });
    await expect(loadDefinition({ path: throwing.dir, cacheDir: throwing.cacheDir })).rejects.toMatchObject({
      code: "CASTLE_DEFINITION_ERROR",
      message: expect.stringMatching(/castle\.ts:3:\d+: boom/),
    });
  });

  it("says what is wrong when castle.ts is missing or exports no system", async () => {
    const empty = project({ "README": "nothing here" });
    await expect(loadDefinition({ path: empty.dir, cacheDir: empty.cacheDir })).rejects.toMatchObject({ code: "CASTLE_DEFINITION_MISSING" });
    const noExport = project({ "castle.ts": "export const x = 1;\n" });
    await expect(loadDefinition({ path: noExport.dir, cacheDir: noExport.cacheDir })).rejects.toMatchObject({ code: "CASTLE_DEFINITION_EXPORT" });
  });
});
