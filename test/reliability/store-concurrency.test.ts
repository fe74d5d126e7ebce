// Reliability: several `castle` processes (bundled CLI, uid 65534) on one store at once. Four
// builds of one system must each succeed with the same digest, build every layer exactly once
// between them (counted from the "building" lines of all four), and leave a consistent store;
// systems that share layers share their builds too; and maintenance commands running meanwhile
// (verify, prune) must not break the builds. A fully cached build takes no lock, yet waits for a
// prune that is running.

import { beforeAll, describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { acquireLock, openStore, pruneStore } from "@castle/cache";
import { busyboxMissing, makeBusyboxRootfs } from "../fixtures/rootfs";
import { builtLayers, cliMissing, collect, describeRun, makeCliHome, runCastle, spawnCastle, type CliResult } from "./helpers/cli";
import { useTempDirs, writeDefinition } from "./helpers/definitions";
import { checkStore } from "./helpers/store-check";

const skip = cliMissing() ?? busyboxMissing();
if (skip) console.warn(`skipping concurrency tests: ${skip}`);

const temp = useTempDirs("castle-rel-conc");
let rootfs: string;
beforeAll(() => {
  if (!skip) rootfs = makeBusyboxRootfs(temp("rootfs"));
});

/** A system of a few layers that take a moment; APP_SEED changes only the top layer. */
function definition(): string {
  return writeDefinition(temp("def"), {
    "castle.ts": `import { layer, source, system } from "castle";
const app = process.env.APP_SEED ?? "app";
const base = layer.import({ name: "base", from: source.local(${JSON.stringify(rootfs)}) });
const files = source.inline({ "data.txt": "shared input\\n" }, { name: "files" });
const libc = layer({ name: "libc", runDeps: [base], script: "sleep 0.3; mkdir -p /lib && i=0; while [ $i -lt 300 ]; do echo $i > /lib/f$i; i=$((i+1)); done" });
const tools = layer({ name: "tools", runDeps: [libc], mounts: { "/src": files }, script: "sleep 0.2; cp /src/data.txt /tools.txt" });
const extra = layer({ name: "extra", runDeps: [base], script: "sleep 0.2; echo extra > /extra" });
const top = layer({ name: "top-" + app, runDeps: [tools], buildDeps: [extra], script: "echo " + app + " > /app" });
export default system({ name: "conc-" + app, layers: [top] });
`,
  });
}

async function together(home: ReturnType<typeof makeCliHome>, runs: Array<{ args: string[]; env?: Record<string, string> }>): Promise<CliResult[]> {
  const children = runs.map((run) => collect(spawnCastle(home, run.args, { env: run.env }), 120_000));
  return Promise.all(children);
}

describe.skipIf(skip)("store: concurrent castle processes", () => {
  it("4 builds of one system at once: all succeed alike, every layer built once between them", async () => {
    const home = makeCliHome();
    const def = definition();
    const results = await together(home, Array.from({ length: 4 }, () => ({ args: ["build", def, "--plain"] })));
    for (const result of results) expect(result.code, describeRun(result)).toBe(0);
    expect(new Set(results.map((r) => r.stdout)).size).toBe(1);
    const built = results.flatMap((r) => builtLayers(r.stderr)).sort();
    expect(built, results.map(describeRun).join("\n")).toEqual(["extra", "libc", "tools", "top-app"]);
    expect(checkStore(home.cache).problems).toEqual([]);
  });

  it("4 systems sharing layers, built at once: shared layers built once, each top layer once", async () => {
    const home = makeCliHome();
    const def = definition();
    const seeds = ["a", "b", "c", "d"];
    const results = await together(home, seeds.map((seed) => ({ args: ["build", def, "--plain"], env: { APP_SEED: seed } })));
    for (const result of results) expect(result.code, describeRun(result)).toBe(0);
    const built = results.flatMap((r) => builtLayers(r.stderr)).sort();
    expect(built).toEqual(["extra", "libc", "tools", "top-a", "top-b", "top-c", "top-d"]);
    expect(checkStore(home.cache).problems).toEqual([]);
  });

  it("builds keep working while `cache verify` runs beside them", async () => {
    const home = makeCliHome();
    const def = definition();
    const first = await runCastle(home, ["build", def, "--plain"]);
    expect(first.code, describeRun(first)).toBe(0);
    const results = await together(home, [
      { args: ["build", def, "--plain"], env: { APP_SEED: "v1" } },
      { args: ["cache", "verify"] },
      { args: ["build", def, "--plain"], env: { APP_SEED: "v2" } },
      { args: ["cache", "verify"] },
    ]);
    for (const result of results) expect(result.code, describeRun(result)).toBe(0);
    expect(checkStore(home.cache).problems).toEqual([]);
  });

  // Builds hold the store's lock shared from their first look-up until their root is recorded,
  // and a prune takes it exclusively: layers a build has found or made but not yet recorded are
  // never pruned under it, however eager the prune (--keep-days 0, in a tight loop here).
  it("a running system keeps its layers through `cache prune --keep-days 0`", async () => {
    const home = makeCliHome();
    const def = definition();
    const running = spawnCastle(home, ["run", def, "--plain", "--", "/bin/sh", "-c", "echo up; sleep 2; cat /app"], { env: { APP_SEED: "live" } });
    const done = collect(running, 120_000);
    await new Promise<void>((resolve) => running.stdout!.on("data", (d: Buffer) => d.toString().includes("up") && resolve()));
    const prune = await runCastle(home, ["cache", "prune", "--keep-days", "0"]);
    expect(prune.code, describeRun(prune)).toBe(0);
    expect(prune.stdout).toMatch(/^removed 0 keys and 0 trees/);
    const run = await done;
    expect(run.code, describeRun(run)).toBe(0);
    expect(run.stdout).toContain("live");
    // Once it has exited, the same prune removes what it used.
    const after = await runCastle(home, ["cache", "prune", "--keep-days", "0"]);
    expect(after.stdout).not.toMatch(/^removed 0 keys/);
    expect(checkStore(home.cache).problems).toEqual([]);
  });

  it("a fully cached build takes no lock, but waits for a prune that is running", async () => {
    const home = makeCliHome();
    const def = definition();
    const first = await runCastle(home, ["build", def, "--plain"]);
    expect(first.code, describeRun(first)).toBe(0);
    // Someone holds the store's lock exclusively; no prune is counted as running.
    const held = await acquireLock(join(home.cache, "locks", "store.lock"));
    try {
      const cached = await runCastle(home, ["build", def, "--plain"]);
      expect(cached.code, describeRun(cached)).toBe(0);
      expect(cached.stdout).toBe(first.stdout);
      expect(cached.stderr).not.toMatch(/waiting for a cache prune/);
      // Now as a prune holds it: the generation odd. The same cached build must wait for it.
      writeFileSync(join(home.cache, "locks", "prune-generation"), "1\n");
      const waiting = collect(spawnCastle(home, ["build", def, "--plain"]), 60_000);
      const early = await Promise.race([waiting.then(() => "finished"), new Promise((r) => setTimeout(() => r("waiting"), 2000))]);
      expect(early).toBe("waiting");
      writeFileSync(join(home.cache, "locks", "prune-generation"), "2\n");
      await held.release();
      const after = await waiting;
      expect(after.code, describeRun(after)).toBe(0);
      expect(after.stderr).toMatch(/waiting for a cache prune to finish/);
      expect(after.stdout).toBe(first.stdout);
    } finally {
      await held.release();
    }
  });

  it("a build keeps working while the store is pruned beside it", async () => {
    const home = makeCliHome();
    const def = definition();
    // A first build makes the store's directories (as the user castle runs as).
    const warm = await runCastle(home, ["build", def, "--plain"], { env: { APP_SEED: "warm" } });
    expect(warm.code, describeRun(warm)).toBe(0);
    const store = openStore(home.cache);
    let pruning = true;
    let prunes = 0;
    const pruner = (async () => {
      while (pruning) {
        await pruneStore(store, { keepForMs: 0 });
        prunes++;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    try {
      const result = await runCastle(home, ["build", def, "--plain"], { env: { APP_SEED: "hot" } });
      expect(result.code, describeRun(result)).toBe(0);
      // The CLI's prune too, started while a build runs: it waits, then keeps what that build used.
      const build = spawnCastle(home, ["build", def, "--plain"], { env: { APP_SEED: "hot2" } });
      const done = collect(build, 120_000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const prune = await runCastle(home, ["cache", "prune", "--keep-days", "0"]);
      expect(prune.code, describeRun(prune)).toBe(0);
      const built = await done;
      expect(built.code, describeRun(built)).toBe(0);
    } finally {
      pruning = false;
      await pruner;
    }
    expect(prunes).toBeGreaterThan(1);
    expect(checkStore(home.cache).problems).toEqual([]);
  });
});
