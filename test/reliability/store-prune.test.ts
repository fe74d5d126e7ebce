// Reliability: `castle cache prune` beside the things it must never break. A running system keeps
// its layers under every prune option (--max-size too, however small), and so does a build in
// progress; a prune killed with -9 at any point leaves no half-removed tree where `cache verify`
// or a build would find it. All through the bundled CLI as uid 65534.

import { readdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { busyboxMissing, makeBusyboxRootfs } from "../fixtures/rootfs";
import { builtLayers, cliMissing, collect, describeRun, makeCliHome, runCastle, spawnCastle, type CliHome, type CliResult } from "./helpers/cli";
import { useTempDirs, writeDefinition } from "./helpers/definitions";
import { random, SLOW } from "./helpers/random";
import { checkStore } from "./helpers/store-check";

const skip = cliMissing() ?? busyboxMissing();
if (skip) console.warn(`skipping prune tests: ${skip}`);

const temp = useTempDirs("castle-rel-prune");
let rootfs: string;
beforeAll(() => {
  if (!skip) rootfs = makeBusyboxRootfs(temp("rootfs"));
});

/** System "data": /opt/d holds 2 MB in a few files (so a 1 KB size limit wants it gone). SEED
 * changes the data layer; SLEEP makes it take that long to build. */
function dataDefinition(): string {
  return writeDefinition(temp("def"), {
    "castle.ts": `import { layer, source, system } from "castle";
const seed = process.env.SEED ?? "0";
const base = layer.import({ name: "base", from: source.local(${JSON.stringify(rootfs)}) });
const data = layer({ name: "data", runDeps: [base], script: "sleep " + (process.env.SLEEP ?? "0") + "; mkdir -p /opt/d && head -c 2000000 /dev/zero > /opt/d/big && echo " + seed + " > /opt/d/seed && echo kept > /opt/d/small" });
export default system({ name: "data", layers: [data] });
`,
  });
}

/** System "many": one layer of `files` small files, slow to delete. */
function manyDefinition(files: number): string {
  return writeDefinition(temp("def"), {
    "castle.ts": `import { layer, source, system } from "castle";
const seed = process.env.SEED ?? "0";
const base = layer.import({ name: "base", from: source.local(${JSON.stringify(rootfs)}) });
const many = layer({ name: "many", runDeps: [base], script: "mkdir -p /m && cd /m && i=0; while [ $i -lt ${files} ]; do echo " + seed + " > f$i; i=$((i+1)); done" });
export default system({ name: "many", layers: [many] });
`,
  });
}

/** Starts `castle run` of def with a shell command; resolves once it printed "up", to its end. */
async function startRun(home: CliHome, def: string, script: string, args: string[] = []): Promise<{ done: Promise<CliResult> }> {
  const child = spawnCastle(home, ["run", def, "--plain", ...args, "--", "/bin/sh", "-c", `echo up; ${script}`]);
  const done = collect(child, 120_000);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => d.toString().includes("up") && resolve());
    done.then((r) => reject(new Error(`the run ended before it started its command\n${describeRun(r)}`)), reject);
  });
  return { done }; // not the promise itself: an async function would wait for it
}

describe.skipIf(skip)("cache prune beside running systems and builds", () => {
  it("a running system keeps its layers through `cache prune --max-size 1K`, alone and with --keep-days 0", async () => {
    const home = makeCliHome();
    const def = dataDefinition();
    for (const options of [["--max-size", "1K"], ["--max-size", "0", "--keep-days", "0"]]) {
      const run = (await startRun(home, def, "sleep 2; cat /opt/d/small; ls /opt/d")).done;
      const prune = await runCastle(home, ["cache", "prune", ...options]);
      expect(prune.code, describeRun(prune)).toBe(0);
      expect(prune.stdout, describeRun(prune)).toMatch(/^removed 0 keys and 0 trees .*; kept .* \(.* held by running systems\)$/m);
      const result = await run;
      expect(result.code, `${options.join(" ")}: ${describeRun(result)}\nprune: ${prune.stdout}`).toBe(0);
      expect(result.stdout).toBe("up\nkept\nbig\nseed\nsmall\n");
      expect(checkStore(home.cache).problems).toEqual([]);
    }
    // Once nothing runs, the same prune may take them: the protection was the running system.
    const after = await runCastle(home, ["cache", "prune", "--max-size", "1K"]);
    expect(after.stdout, describeRun(after)).toMatch(/^removed [1-9]\d* keys/);
  });

  it("an --ephemeral run keeps its layers too, while a persistent one of another version runs", async () => {
    const home = makeCliHome();
    const def = dataDefinition();
    const persistent = (await startRun(home, def, "sleep 3; cat /opt/d/seed")).done;
    // A second version of the same system (its root now names other layers) runs beside it.
    const child = spawnCastle(home, ["run", def, "--plain", "--ephemeral", "--", "/bin/sh", "-c", "echo up; sleep 3; cat /opt/d/seed"], { env: { SEED: "other" } });
    const ephemeral = collect(child, 120_000);
    await new Promise<void>((resolve) => child.stdout!.on("data", (d: Buffer) => d.toString().includes("up") && resolve()));
    const prune = await runCastle(home, ["cache", "prune", "--max-size", "0", "--keep-days", "0"]);
    expect(prune.code, describeRun(prune)).toBe(0);
    const [first, second] = await Promise.all([persistent, ephemeral]);
    expect(first.code, describeRun(first)).toBe(0);
    expect(first.stdout).toBe("up\n0\n");
    expect(second.code, describeRun(second)).toBe(0);
    expect(second.stdout).toBe("up\nother\n");
    expect(checkStore(home.cache).problems).toEqual([]);
  });

  it("a build in progress keeps what it found and made: `cache prune --max-size 0 --keep-days 0` waits for it", async () => {
    const home = makeCliHome();
    const def = dataDefinition();
    const first = await runCastle(home, ["build", def, "--plain"]);
    expect(first.code, describeRun(first)).toBe(0);
    // A second version whose data layer takes 2 s to build, on the cached base.
    const build = collect(spawnCastle(home, ["build", def, "--plain"], { env: { SEED: "slow", SLEEP: "2" } }), 120_000);
    await new Promise((resolve) => setTimeout(resolve, 700));
    const prune = await runCastle(home, ["cache", "prune", "--max-size", "0", "--keep-days", "0"]);
    expect(prune.code, describeRun(prune)).toBe(0);
    expect(prune.stderr).toMatch(/waiting for running builds to finish/);
    const built = await build;
    expect(built.code, describeRun(built)).toBe(0);
    expect(builtLayers(built.stderr)).toEqual(["data"]);
    expect(checkStore(home.cache).problems).toEqual([]);
  });
});

describe.skipIf(skip)("a prune killed with -9", () => {
  const KILLS = SLOW ? 12 : 3;
  it(`leaves no half-removed tree in trees/, ${KILLS} kills at random points of removal`, async () => {
    const rng = random();
    const home = makeCliHome();
    const def = manyDefinition(3000);
    // How long a whole prune of that tree takes here (its start-up included).
    const warm = await runCastle(home, ["build", def, "--plain"], { env: { SEED: "warm" } });
    expect(warm.code, describeRun(warm)).toBe(0);
    const started = Date.now();
    const timed = await runCastle(home, ["cache", "prune", "--keep-days", "0"]);
    expect(timed.stdout, describeRun(timed)).toMatch(/^removed [1-9]/);
    const pruneMs = Date.now() - started;
    const outcomes: string[] = [];
    for (let i = 0; i < KILLS; i++) {
      const built = await runCastle(home, ["build", def, "--plain"], { env: { SEED: `s${rng.seed}-${i}` } });
      expect(built.code, describeRun(built)).toBe(0);
      const delay = rng.int(Math.round(pruneMs * 0.3), Math.round(pruneMs * 0.95));
      const child = spawnCastle(home, ["cache", "prune", "--keep-days", "0"]);
      const done = collect(child, 60_000);
      await new Promise((resolve) => setTimeout(resolve, delay));
      child.kill("SIGKILL");
      const result = await done;
      outcomes.push(`${delay} of ${pruneMs} ms: ${result.signal ?? `exit ${result.code}`}`);
      const report = checkStore(home.cache, { atRest: false });
      expect(report.problems, `kill ${i} (rng seed ${rng.seed})\n${outcomes.join("\n")}`).toEqual([]);
      const verify = await runCastle(home, ["cache", "verify"]);
      expect(verify.code, `${outcomes.join("\n")}\n${describeRun(verify)}`).toBe(0);
    }
    // The next castle process clears what the killed prunes were still deleting.
    const clean = await runCastle(home, ["build", def, "--plain"], { env: { SEED: "last" } });
    expect(clean.code, describeRun(clean)).toBe(0);
    const last = await runCastle(home, ["cache", "prune", "--keep-days", "0"]);
    expect(last.code, describeRun(last)).toBe(0);
    expect(checkStore(home.cache).problems).toEqual([]);
    expect(readdirSync(join(home.cache, "trees"))).toEqual([]);
  }, SLOW ? 600_000 : 180_000);
});
