// Benchmark: Castle inside the distro it runs. Three comparisons, each side by side in one run:
// 1. a nested `castle run -- /bin/true` of the cached distro, inside the distro (everything from
//    the outer store), against the same command on the host (target ≤ 1.5×);
// 2. the libc patch from inside: a new _Exit.c in ~/src/musl-src (`castle edit`), then
//    `castle run -- sh -c 'exit 3'` inside until it prints RIP 3 — against the same patch from the
//    host (CASTLE_OVERRIDE_musl_src), and the 5 s target;
// 3. a cached `castle run -- /bin/true` on the host with Castle mounted into the system against
//    `--no-castle` (target ≤ 1.05×: a few bind mounts, no copy), through Node;
// 4. the same through the `castle` launcher, whose fast path a cached run takes: against a copy
//    of the definition that says `castle: false` (a flag such as --no-castle never takes it).
// Both sides of 1 and 2 are timed by the same small Node driver (spawn, wait, hrtime), run on the
// host or inside with Castle's own node. Castle runs as uid 65534 when the bench runs as root
// (rootless, as users run it). Builds the distro first, untimed, into
// BENCH_DIR/inside (files from the mirror the other distro benchmarks download).
// Run: npx tsx bench/distro-inside.ts   (exports main() for bench/run.ts)

import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { BENCH_DIR, DISTRO, RIP_EXIT_C, castleEnv, distroBenchProblem, outcomes, prepareFiles, run, type Run } from "./distro/common";
import { CASTLE, ensureBundle } from "./lib/castle-cli";
import { median, printRows, row, type BenchRow } from "./lib/rows";

const ROUNDS = Number(process.env.CASTLE_BENCH_RUNS ?? 6);
const PER_ROUND = 5;
const PATCH_ROUNDS = Number(process.env.CASTLE_BENCH_RUNS ?? 3);
const IS_ROOT = process.getuid?.() === 0;

/** Runs a command `n` times (expecting status `want`) and prints the wall times in ms as JSON. */
const DRIVER = `const { spawnSync } = require("child_process");
const [n, want, ...cmd] = process.argv.slice(1);
const times = [];
for (let i = 0; i < Number(n); i++) {
  const start = process.hrtime.bigint();
  const r = spawnSync(cmd[0], cmd.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
  if (r.status !== Number(want)) { process.stderr.write(String(r.stderr)); process.exit(90); }
  times.push(Number(process.hrtime.bigint() - start) / 1e6);
  if (i === Number(n) - 1) process.stderr.write(String(r.stderr));
}
console.log(JSON.stringify(times));`;

export async function main(): Promise<BenchRow[]> {
  const problem = await distroBenchProblem();
  if (problem) {
    console.warn(`distro-inside: skipped: ${problem}`);
    return [];
  }
  ensureBundle();
  const { mirror } = await prepareFiles();
  const dir = join(BENCH_DIR, "inside");
  mkdirSync(dir, { recursive: true });
  if (IS_ROOT) execFileSync("chown", ["-R", "65534:65534", dir]);
  const env = { ...castleEnv(dir, mirror), HOME: dir };
  const castle = async (args: string[], expect = 0, extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> => {
    const r = IS_ROOT
      ? await run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, CASTLE, ...args], { ...env, ...extraEnv })
      : await run(process.execPath, [CASTLE, ...args], { ...env, ...extraEnv });
    if (r.code !== expect) throw new Error(`castle ${args.join(" ")} exited ${r.code} (expected ${expect}):\n${r.stderr.slice(-4000)}`);
    return r;
  };
  /** The driver's times for `n` runs of cmd, on the host or inside the distro. */
  const drive = async (where: "host" | "inside", n: number, want: number, cmd: string[], extraEnv: NodeJS.ProcessEnv = {}) => {
    const r = where === "host"
      ? await (IS_ROOT
        ? run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, "-e", DRIVER, String(n), String(want), ...cmd], { ...env, ...extraEnv })
        : run(process.execPath, ["-e", DRIVER, String(n), String(want), ...cmd], { ...env, ...extraEnv }))
      : await castle(["run", DISTRO, "--", "/.castle/libexec/node", "-e", DRIVER, String(n), String(want), ...cmd]);
    if (r.code !== 0) throw new Error(`the driver failed (${where}, ${r.code}):\n${r.stderr.slice(-4000)}`);
    return { times: JSON.parse(r.stdout.trim().split("\n").pop()!) as number[], stderr: r.stderr };
  };

  await castle(["build", DISTRO, "--plain"]); // untimed; minutes the first time
  await castle(["run", DISTRO, "--", "/bin/true"]);
  const rows: BenchRow[] = [];

  // 1. Nested castle run against the same on the host.
  const host: number[] = [];
  const nested: number[] = [];
  await drive("inside", 1, 0, ["castle", "run", "--", "/bin/true"]); // the inner code cache
  for (let round = 0; round < ROUNDS; round++) {
    host.push(...(await drive("host", PER_ROUND, 0, [process.execPath, CASTLE, "run", DISTRO, "--", "/bin/true"])).times);
    nested.push(...(await drive("inside", PER_ROUND, 0, ["castle", "run", "--", "/bin/true"])).times);
  }
  rows.push(row("nested `castle run -- /bin/true` of the cached distro, inside the distro (target ≤ 1.5×)", median(nested), median(host), "the same on the host"));

  // 2. The libc patch from inside against the same from the host.
  await castle(["run", DISTRO, "--", "castle", "edit", "musl-src"]);
  const inside = join(dir, "data/systems/distro/src/musl-src");
  const hostCopy = join(dir, "musl-host");
  if (!existsSync(hostCopy)) await castle(["source", DISTRO, "--name", "musl-src", "--out", hostCopy]);
  const variant = (n: number) => RIP_EXIT_C.replace("_Exit(int ec)\n{\n", `_Exit(int ec)\n{\n\tif (ec == ${1000 + n}) __syscall(SYS_getpid);\n`);
  const stamp = Date.now() % 100000;
  const patchInside: number[] = [];
  const patchHost: number[] = [];
  for (let round = -1; round < PATCH_ROUNDS; round++) {
    writeFileSync(join(inside, "src/exit/_Exit.c"), variant(stamp * 10 + round * 2 + 2));
    const mine = await drive("inside", 1, 3, ["castle", "run", "--plain", "--", "sh", "-c", "exit 3"]);
    checkPatched(mine.stderr, "inside");
    writeFileSync(join(hostCopy, "src/exit/_Exit.c"), variant(stamp * 10 + round * 2 + 3));
    const theirs = await drive("host", 1, 3, [process.execPath, CASTLE, "run", DISTRO, "--plain", "--", "sh", "-c", "exit 3"], { CASTLE_OVERRIDE_musl_src: hostCopy });
    checkPatched(theirs.stderr, "host");
    // Round -1 warms up: the inner store's first build of musl starts its object cache from the outer one.
    if (round < 0) continue;
    patchInside.push(mine.times[0]!);
    patchHost.push(theirs.times[0]!);
    console.log(`distro-inside: patch round ${round + 1}: inside ${(mine.times[0]! / 1000).toFixed(2)} s, host ${(theirs.times[0]! / 1000).toFixed(2)} s`);
  }
  const patch = "libc patch from inside the distro: new _Exit.c in ~/src/musl-src, then nested `castle run -- sh -c 'exit 3'` prints RIP 3";
  rows.push(row(patch, median(patchInside), median(patchHost), "the same patch from the host (CASTLE_OVERRIDE_musl_src)"));
  rows.push(row(patch, median(patchInside), 5000, "target: under 5 s"));

  // 3. The cost of Castle's mounts on a cached run: paired rounds, the order alternating, so that
  // drift in the machine's load falls on both sides alike.
  const withCastle: number[] = [];
  const without: number[] = [];
  const differences: number[] = [];
  const cached = async (args: string[]) => (await castle(["run", DISTRO, ...args, "--", "/bin/true"])).ms;
  for (let round = 0; round < 60; round++) {
    let a: number;
    let b: number;
    if (round % 2) {
      a = await cached([]);
      b = await cached(["--no-castle"]);
    } else {
      b = await cached(["--no-castle"]);
      a = await cached([]);
    }
    withCastle.push(a);
    without.push(b);
    differences.push(a - b);
  }
  rows.push(row(
    `cached \`castle run -- /bin/true\` of the distro with Castle mounted in (target ≤ 1.05×; median paired difference ${median(differences).toFixed(1)} ms)`,
    median(withCastle), median(without), "the same with --no-castle",
  ));

  // 4. The same through the launcher's fast path, both sides timed by the driver on the host.
  const plain = join(dir, "distro-no-castle");
  cpSync(DISTRO, plain, { recursive: true });
  const definition = readFileSync(join(DISTRO, "castle.ts"), "utf8");
  if (!definition.includes(`hostname: "castle-distro",\n`)) throw new Error("examples/distro/castle.ts no longer sets its hostname where this bench adds castle: false");
  writeFileSync(join(plain, "castle.ts"), definition.replace(`hostname: "castle-distro",\n`, `hostname: "castle-distro",\n  castle: false,\n`));
  if (IS_ROOT) execFileSync("chown", ["-R", "65534:65534", plain]);
  const launcher = join(dirname(CASTLE), "castle");
  for (const def of [DISTRO, plain]) {
    // A normal run writes the fast path's entry once the definition's files are out of the
    // racy window (2 s); then the launcher must take it.
    await castle(["run", def, "--", "/bin/true"]);
    await new Promise((resolve) => setTimeout(resolve, 2100));
    await castle(["run", def, "--", "/bin/true"]);
    const check = await drive("host", 1, 0, [launcher, "run", def, "--", "/bin/true"], { CASTLE_FASTPATH_DEBUG: "1" });
    if (!check.stderr.includes("castle: fast path: taken")) throw new Error(`the fast path is not taken for ${def}: ${check.stderr}`);
  }
  const fastWith: number[] = [];
  const fastWithout: number[] = [];
  const fastRun = async (def: string, into: number[]) => into.push(...(await drive("host", PER_ROUND, 0, [launcher, "run", def, "--", "/bin/true"])).times);
  for (let round = 0; round < ROUNDS * 2; round++) {
    // The order alternates, as in 3.
    for (const [def, into] of round % 2 ? [[DISTRO, fastWith], [plain, fastWithout]] as const : [[plain, fastWithout], [DISTRO, fastWith]] as const) await fastRun(def, into);
  }
  rows.push(row(
    "cached `castle run -- /bin/true` of the distro through the launcher (fast path) with Castle mounted in (target ≤ 1.05×)",
    median(fastWith), median(fastWithout), "the same system with castle: false",
  ));
  return rows;
}

function checkPatched(stderr: string, where: string): void {
  const seen = outcomes(stderr);
  if (!/^RIP 3$/m.test(stderr) || (seen.built ?? []).sort().join(" ") !== "musl musl-dev musl-source") {
    throw new Error(`the patched run (${where}) did not rebuild exactly musl, musl-dev and musl-source and print RIP 3:\n${stderr.slice(-3000)}`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().then(printRows, (error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
