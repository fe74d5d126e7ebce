// Reliability: many `castle run`s of one cached system through the bundled CLI (uid 65534), then
// a check that nothing grew. One worker runs the persistent instance again and again, another
// runs --ephemeral instances beside it, and every 25th run of each is killed with -9 mid-command.
// Afterwards (and after one clean run of each kind, which clears what killed runs left): no
// process carrying the run's mark, the host's mounts unchanged, nothing left anywhere Castle
// writes temporary things (its TMPDIR, the store's tmp/ and pins/, the state and data dirs), and
// the store no bigger than after the first runs. Prints instances per second.
// Normal runs: 100 instances; CASTLE_SLOW_TESTS=1: 2 000 (CASTLE_LOAD_RUNS sets any number).

import { mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { busyboxMissing, makeBusyboxRootfs } from "../fixtures/rootfs";
import { cliMissing, collect, describeRun, giveToRunner, makeCliHome, runCastle, spawnCastle, type CliHome, type CliResult } from "./helpers/cli";
import { useTempDirs, writeDefinition } from "./helpers/definitions";
import { SLOW } from "./helpers/random";
import { hostChanges, LEAK_MARK, markedProcessesAfter, snapshot } from "./helpers/sandbox-fixture";

const skip = cliMissing() ?? busyboxMissing();
if (skip) console.warn(`skipping run-load tests: ${skip}`);

const TOTAL = Number(process.env.CASTLE_LOAD_RUNS ?? (SLOW ? 2000 : 100));
const KILL_EVERY = 25;

const temp = useTempDirs("castle-rel-runload");
let def: string;
beforeAll(() => {
  if (skip) return;
  const rootfs = makeBusyboxRootfs(temp("rootfs"));
  def = writeDefinition(temp("def"), {
    "castle.ts": `import { layer, source, system } from "castle";
const base = layer.import({ name: "base", from: source.local(${JSON.stringify(rootfs)}) });
const app = layer({ name: "app", runDeps: [base], script: "mkdir -p /app && echo app > /app/v" });
export default system({ name: "load", layers: [app] });
`,
  });
});

/** Every file under dir with its size (what "the store grew" means), bookkeeping included. */
function filesUnder(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  const visit = (path: string, rel: string) => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const abs = join(path, entry.name);
      const name = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) visit(abs, name);
      else out.set(name, entry.isFile() ? statSync(abs).size : 0);
    }
  };
  visit(dir, "");
  return out;
}

function grown(before: Map<string, number>, after: Map<string, number>): string[] {
  return [...after].filter(([name, size]) => !before.has(name) || size > before.get(name)!).map(([name, size]) => `${name} (${size} B)`);
}

/** Entries of Castle's own directories that come and go with runs: none may be left at rest. */
function leftovers(home: CliHome): string[] {
  const list = (dir: string) => {
    try {
      return readdirSync(dir).map((name) => `${dir}/${name}`);
    } catch {
      return [];
    }
  };
  return [
    ...list(join(home.dir, "tmp")), ...list(join(home.cache, "tmp")), ...list(join(home.cache, "pins")), ...list(join(home.data, "tmp")),
    ...list(join(home.state, "instances")), ...list(join(home.state, "slots")).filter((p) => !p.endsWith(".lock")),
  ];
}

describe.skipIf(skip)("castle run under load", () => {
  it(`${TOTAL} runs of one cached system, persistent and --ephemeral side by side, some killed: nothing grows`, async () => {
    const home = makeCliHome();
    // Castle's own temp files (castle-treeutil's fifos) go to TMPDIR: a private one, checked below.
    mkdirSync(join(home.dir, "tmp"));
    giveToRunner(join(home.dir, "tmp"));
    home.env.TMPDIR = join(home.dir, "tmp");
    const mark = ["/bin/sh", "-c", `: ${LEAK_MARK}; exit 0`];
    const slow = ["/bin/sh", "-c", `: ${LEAK_MARK}; echo up; sleep 30`];
    // Warm-up: the build, the code cache, one run of each kind; then, once the local source's
    // files are no longer "racy" for its stat cache (changed within 2 s of its writing), one more.
    for (const args of [["run", def, "--plain", "--", ...mark], ["run", def, "--plain", "--ephemeral", "--", ...mark], ["run", def, "--plain", "--", ...mark]]) {
      const warm = await runCastle(home, args);
      expect(warm.code, describeRun(warm)).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 2100));
    }
    const storeBefore = filesUnder(home.cache);
    const hostBefore = snapshot();
    const problems: string[] = [];
    const counts = { ok: 0, killed: 0 };

    const once = async (i: number, ephemeral: boolean): Promise<void> => {
      const kill = i % KILL_EVERY === KILL_EVERY - 1;
      const args = ["run", def, "--plain", ...(ephemeral ? ["--ephemeral"] : []), "--", ...(kill ? slow : mark)];
      const child = spawnCastle(home, args);
      const done = collect(child, 120_000);
      if (kill) {
        await new Promise<void>((resolve) => {
          child.stdout!.on("data", (d: Buffer) => d.toString().includes("up") && resolve());
          void done.then(() => resolve());
        });
        child.kill("SIGKILL");
      }
      const result: CliResult = await done;
      if (kill ? result.signal === "SIGKILL" : result.code === 0) counts[kill ? "killed" : "ok"]++;
      else problems.push(`run ${i}${ephemeral ? " (ephemeral)" : ""}: ${describeRun(result)}`);
      // A killed run's sandbox dies with it (its sync fd closes); the next persistent run must
      // not find it still there, so wait until its processes are gone.
      if (kill) await markedProcessesAfter(5000);
    };

    let next = 0;
    const started = performance.now();
    await Promise.all([false, true].map(async (ephemeral) => {
      while (next < TOTAL) await once(next++, ephemeral);
    }));
    const seconds = (performance.now() - started) / 1000;
    console.log(`run-load: ${TOTAL} castle runs in ${seconds.toFixed(1)} s (${(TOTAL / seconds).toFixed(1)} instances/s): ${JSON.stringify(counts)}`);
    expect(problems.slice(0, 3)).toEqual([]);

    // One clean run of each kind clears what killed runs left (their ephemeral state, stale slots).
    for (const args of [["run", def, "--plain", "--", ...mark], ["run", def, "--plain", "--ephemeral", "--", ...mark]]) {
      const clean = await runCastle(home, args);
      expect(clean.code, describeRun(clean)).toBe(0);
    }
    expect(await markedProcessesAfter(5000)).toEqual([]);
    expect(hostChanges(hostBefore).mounts).toEqual([]);
    expect(leftovers(home)).toEqual([]);
    expect(grown(storeBefore, filesUnder(home.cache))).toEqual([]);
  }, Math.max(300_000, TOTAL * 2_000));
});
