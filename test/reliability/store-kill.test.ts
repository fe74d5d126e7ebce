// Reliability: kill -9 at random points. A `castle build` process (uid 65534, the bundled CLI)
// is killed after a random delay, again and again on one store; after every kill the store must
// be consistent (every record's tree exists and digests to the record's digest, every tree to its
// name), and at the end a clean build must succeed and leave nothing behind. A second loop kills
// a process that does nothing but commit layers, to hit every step of a commit.
// Normal runs: 6 build kills and 5 commit kills (~15 s); CASTLE_SLOW_TESTS=1: 30 and 40 (~60 s).

import { spawn } from "node:child_process";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { openStore } from "@castle/cache";
import { busyboxMissing, makeBusyboxRootfs } from "../fixtures/rootfs";
import { builtLayers, cliMissing, collect, describeRun, makeCliHome, runCastle, spawnCastle } from "./helpers/cli";
import { useTempDirs, writeDefinition } from "./helpers/definitions";
import { random, SLOW } from "./helpers/random";
import { checkStore } from "./helpers/store-check";

const skip = cliMissing() ?? busyboxMissing();
if (skip) console.warn(`skipping kill -9 tests: ${skip}`);

const temp = useTempDirs("castle-rel-kill");
const BUILD_KILLS = SLOW ? 30 : 6;
const COMMIT_KILLS = SLOW ? 40 : 5;

/** A system whose layers take long enough to be killed in every phase: many small files, one
 * big file, a slow script, and a stable layer that stays cached once built. CASTLE_TEST_SEED
 * changes the scripts of all but the stable one, so each seed is new work. */
function killDefinition(rootfs: string): string {
  return writeDefinition(temp("def"), {
    "castle.ts": `import { layer, source, system } from "castle";
const seed = process.env.CASTLE_TEST_SEED ?? "0";
const base = layer.import({ name: "base", from: source.local(${JSON.stringify(rootfs)}) });
const many = layer({ name: "many", runDeps: [base], script: "mkdir -p /many && i=0; while [ $i -lt 1000 ]; do echo " + seed + "-$i > /many/f$i; i=$((i+1)); done" });
const big = layer({ name: "big", runDeps: [base], script: "head -c 8000000 /dev/urandom > /big; echo " + seed + " >> /big" });
const slow = layer({ name: "slow", runDeps: [many], buildDeps: [big], script: "sleep 0.2; wc -c /big > /slow; echo " + seed + " >> /slow" });
const stable = layer({ name: "stable", runDeps: [base], script: "mkdir -p /stable; echo stable > /stable/x" });
export default system({ name: "kill", layers: [slow, stable] });
`,
  });
}

let rootfs: string;
beforeAll(() => {
  if (!skip) rootfs = makeBusyboxRootfs(temp("rootfs"));
});

describe.skipIf(skip)("store: kill -9", () => {
  it(`survives ${BUILD_KILLS} castle builds killed at random points, then builds cleanly`, async () => {
    const rng = random();
    const home = makeCliHome();
    const def = killDefinition(rootfs);
    const verified = new Set<string>();
    // One clean build first, to know how long a build takes here.
    const started = Date.now();
    const first = await runCastle(home, ["build", def, "--plain"], { env: { CASTLE_TEST_SEED: "first" } });
    expect(first.code, describeRun(first)).toBe(0);
    const buildMs = Date.now() - started;
    const outcomes: string[] = [];
    for (let i = 0; i < BUILD_KILLS; i++) {
      // Two attempts per seed: the second resumes what the first was killed in.
      const seed = `s${rng.seed}-${Math.floor(i / 2)}`;
      const delay = rng.int(0, Math.round(buildMs * 1.5));
      const child = spawnCastle(home, ["build", def, "--plain"], { env: { CASTLE_TEST_SEED: seed } });
      const done = collect(child, 60_000);
      await new Promise((resolve) => setTimeout(resolve, delay));
      child.kill("SIGKILL");
      const result = await done;
      outcomes.push(`${delay} ms: ${result.signal ?? `exit ${result.code}`} after ${builtLayers(result.stderr).join(",") || "nothing"}`);
      if (result.signal === null) expect(result.code, describeRun(result)).toBe(0);
      const report = checkStore(home.cache, { atRest: false, verified });
      expect(report.problems, `kill ${i} (rng seed ${rng.seed}) at ${delay} ms\n${outcomes.join("\n")}`).toEqual([]);
    }
    // A clean build of the last seed succeeds, and leaves nothing partial behind.
    const clean = await runCastle(home, ["build", def, "--plain"], { env: { CASTLE_TEST_SEED: `s${rng.seed}-${Math.floor((BUILD_KILLS - 1) / 2)}` } });
    expect(clean.code, describeRun(clean)).toBe(0);
    expect(checkStore(home.cache).problems, outcomes.join("\n")).toEqual([]);
    const again = await runCastle(home, ["build", def, "--plain"], { env: { CASTLE_TEST_SEED: `s${rng.seed}-${Math.floor((BUILD_KILLS - 1) / 2)}` } });
    expect(again.code).toBe(0);
    expect(builtLayers(again.stderr)).toEqual([]);
    expect(again.stdout).toBe(clean.stdout);
    const verify = await runCastle(home, ["cache", "verify"]);
    expect(verify.code, describeRun(verify)).toBe(0);
    expect(verify.stdout).toMatch(/: 0 corrupt, 0 keys removed/);
  }, SLOW ? 600_000 : 120_000);

  it(`survives ${COMMIT_KILLS} kills of a process committing layers, wherever in a commit they land`, async () => {
    const rng = random();
    const root = temp("commit-store");
    const child = join(import.meta.dirname, "helpers/commit-child.ts");
    const verified = new Set<string>();
    let committed = 0;
    for (let i = 0; i < COMMIT_KILLS; i++) {
      const proc = spawn(process.execPath, ["--import", "tsx", child, root, String(rng.seed + i)], { stdio: ["ignore", "pipe", "pipe"] });
      const done = collect(proc, 60_000, "commit-child");
      // Wait until it is committing, then let it run for a random while.
      await new Promise<void>((resolve) => proc.stdout!.once("data", () => resolve()));
      await new Promise((resolve) => setTimeout(resolve, rng.int(50, 900)));
      proc.kill("SIGKILL");
      const result = await done;
      expect(result.signal, result.stderr).toBe("SIGKILL");
      committed += (result.stdout.match(/^committed/gm) ?? []).length;
      expect(checkStore(root, { atRest: false, verified }).problems, `kill ${i} (rng seed ${rng.seed})`).toEqual([]);
    }
    expect(committed).toBeGreaterThan(0);
    // What the next castle process does first: clear what the dead ones left. Then nothing remains.
    const store = openStore(root);
    store.removeStaleStaging();
    expect(checkStore(root).problems).toEqual([]);
    expect(store.records().length).toBeGreaterThanOrEqual(committed);
  }, SLOW ? 600_000 : 120_000);
});
