// Benchmark: many short-lived sandboxes, concurrently and in a loop. For concurrency 1, 2, 4 and 8
// it measures instances per second of `/bin/true` over a busybox rootfs, Castle against `bwrap
// --unshare-all --die-with-parent --ro-bind ROOT / --proc /proc --dev /dev /bin/true`, both
// through Node (`run()` against bwrap via child_process) and "direct" (N copies of the C driver
// bench/lib/spawn-timer.c running back to back, no Node in the loop); sides alternate round by
// round so machine noise hits both. castleMs/peerMs are wall time per instance (elapsed divided by
// instances, i.e. 1000 / instances-per-second). Then a soak: 10 000 sandboxes through `run()` at
// concurrency 8, after which nothing may be left: no process carrying the run's marker (helper,
// init, command), no new mount in the host's mountinfo, none of the helper's base dirs on the host
// (newroot, stage... in /tmp, /run, ...: the helper makes no temp dir of its own), no fd growth. Knobs: CASTLE_BENCH_LOAD_RUNS (instances per side, level and round; default 300),
// CASTLE_BENCH_LOAD_TOTAL (soak size; default 10000), CASTLE_BENCH_DIR (where the rootfs goes).
// Run: npx tsx bench/sandbox-load.ts   (exports main() for bench/run.ts)

import { execFileSync, spawn as spawnChild } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { helperPath, run, serializeSpec, type SandboxSpec } from "../packages/sandbox/src/index";
import { type BenchRow, row } from "./lib/rows";

const LEVELS = [1, 2, 4, 8];
const RUNS = Number(process.env.CASTLE_BENCH_LOAD_RUNS ?? 300);
const TOTAL = Number(process.env.CASTLE_BENCH_LOAD_TOTAL ?? 10_000);
const ROUNDS = 2;
const BWRAP = "/usr/bin/bwrap";
const here = dirname(fileURLToPath(import.meta.url));
const MARK = `castle-load-${process.pid}-${Date.now()}`;

/** A world-readable bench dir: rootfs, the spec file and the timer binary. */
function prepare(): { dir: string; rootfs: string; timer: string; specFile: string; spec: SandboxSpec } {
  const dir = join(process.env.CASTLE_BENCH_DIR ?? tmpdir(), "castle-bench-sandbox-load");
  rmSync(dir, { recursive: true, force: true });
  const rootfs = join(dir, "rootfs");
  for (const sub of ["bin", "etc", "proc", "dev", "tmp"]) mkdirSync(join(rootfs, sub), { recursive: true, mode: 0o755 });
  copyFileSync("/bin/busybox", join(rootfs, "bin/busybox"));
  for (const applet of ["true", "sh"]) symlinkSync("busybox", join(rootfs, "bin", applet));
  const timer = join(dir, "spawn-timer");
  execFileSync("cc", ["-O2", "-o", timer, join(here, "lib/spawn-timer.c")]);
  const spec: SandboxSpec = { root: { lowers: [rootfs] }, argv: ["/bin/true"], env: { PATH: "/bin", MARK } };
  const specFile = join(dir, "true.spec");
  writeFileSync(specFile, serializeSpec(spec));
  execFileSync("chmod", ["-R", "a+rX", dir]);
  chmodSync(dir, 0o755);
  return { dir, rootfs, timer, specFile, spec };
}

/** Runs `n` tasks with `concurrency` workers; elapsed ms. */
async function timed(concurrency: number, n: number, one: () => Promise<void>): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next++;
        await one();
      }
    }),
  );
  return performance.now() - start;
}

function bwrapArgs(rootfs: string): string[] {
  return ["--unshare-all", "--die-with-parent", "--ro-bind", rootfs, "/", "--proc", "/proc", "--dev", "/dev", "/bin/true"];
}

function runBwrap(rootfs: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawnChild(BWRAP, bwrapArgs(rootfs), { stdio: ["ignore", "ignore", "pipe"], cwd: "/" });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`bwrap exited ${code}: ${stderr}`))));
  });
}

/** `concurrency` copies of the C driver, `n` runs between them; elapsed ms. */
function direct(timer: string, specFile: string, command: string[], concurrency: number, n: number): Promise<number> {
  const each = Math.ceil(n / concurrency);
  const start = performance.now();
  return Promise.all(
    Array.from({ length: concurrency }, () =>
      new Promise<void>((resolve, reject) => {
        const child = spawnChild(timer, [String(each), specFile, "--", ...command], { stdio: ["ignore", "pipe", "inherit"], cwd: "/" });
        let out = "";
        child.stdout.on("data", (chunk: Buffer) => (out += chunk));
        child.on("error", reject);
        child.on("close", () => {
          const { failed } = JSON.parse(out) as { failed: number[] };
          if (failed.some((f) => f > 0)) reject(new Error(`${failed} runs of ${command[0]} failed`));
          else resolve();
        });
      }),
    ),
  ).then(() => (performance.now() - start) * (n / (each * concurrency)));
}

/** Castle and the peer, alternating for ROUNDS rounds; mean ms per instance of each. */
async function compare(castle: () => Promise<number>, peer: () => Promise<number>): Promise<[number, number]> {
  let c = 0;
  let p = 0;
  for (let round = 0; round < ROUNDS; round++) {
    c += await castle();
    p += await peer();
  }
  return [c / ROUNDS / RUNS, p / ROUNDS / RUNS];
}

// ---- the soak and its leak checks ----

function markedProcesses(): string[] {
  const found: string[] = [];
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (readFileSync(`/proc/${pid}/environ`, "latin1").includes(MARK)) found.push(readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " "));
    } catch {
      // gone or not ours
    }
  }
  return found;
}

/** The helper's own dirs (its base tmpfs holds them, inside the sandbox's mount namespace) found
 * on the host in any dir the base may cover: what a setup that leaked onto the host leaves. */
const BASE_DIRS = ["/tmp", "/run", "/mnt", "/var/tmp", "/media", "/srv", "/opt", "/home", "/boot"];
export function helperDirsOnHost(): string[] {
  return BASE_DIRS.flatMap((dir) => ["newroot", "oldroot", "stage", "links", "scaffold"].map((name) => join(dir, name))).filter((path) => existsSync(path));
}

/** The host's mount points, except inside other processes' temp dirs (other tests mount there). */
const mounts = () =>
  readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ").slice(4, 6))
    .filter(([point]) => !point?.startsWith(`${tmpdir()}/`) || point.startsWith(`${tmpdir()}/castle-bench-sandbox`))
    .map((fields) => fields.join(" "))
    .sort()
    .join("\n");
const fds = () => readdirSync("/proc/self/fd").length;

export interface SoakResult {
  instances: number;
  perSecond: number;
  leftoverProcesses: string[];
  mountsChanged: boolean;
  helperDirs: string[];
  /** New entries in the temp dir, for information: other processes share it. */
  newTempEntries: string[];
  fdsBefore: number;
  fdsAfter: number;
  fdsPeak: number;
}

/** `total` sandboxes through run() at concurrency 8, then everything that could have leaked. */
export async function soak(spec: SandboxSpec, total: number): Promise<SoakResult> {
  const before = { mounts: mounts(), tmp: new Set(readdirSync(tmpdir())), fds: fds() };
  let peak = before.fds;
  let done = 0;
  const elapsed = await timed(8, total, async () => {
    const r = await run(spec);
    if (r.code !== 0) throw new Error(`run() exited ${r.code}: ${r.stderr}`);
    if (++done % 500 === 0) peak = Math.max(peak, fds());
  });
  let leftover = markedProcesses();
  for (let waited = 0; leftover.length > 0 && waited < 3000; waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    leftover = markedProcesses();
  }
  await new Promise((resolve) => setTimeout(resolve, 100)); // let closed pipes' handles go
  return {
    instances: total,
    perSecond: +(total / (elapsed / 1000)).toFixed(1),
    leftoverProcesses: leftover,
    mountsChanged: mounts() !== before.mounts,
    helperDirs: helperDirsOnHost(),
    newTempEntries: readdirSync(tmpdir()).filter((name) => !before.tmp.has(name)),
    fdsBefore: before.fds,
    fdsAfter: fds(),
    fdsPeak: peak,
  };
}

export async function main(): Promise<BenchRow[]> {
  process.env.CASTLE_TEST_LEAK_MARK = MARK; // every helper carries it in its environment
  const { dir, rootfs, timer, specFile, spec } = prepare();
  const rows: BenchRow[] = [];
  const castleDirect = [helperPath(), "--spec-fd", "3"];
  const bwrapDirect = [BWRAP, ...bwrapArgs(rootfs)];
  await run(spec); // warm caches
  for (const c of LEVELS) {
    rows.push(
      row(`load /bin/true, concurrency ${c}, direct`, ...(await compare(() => direct(timer, specFile, castleDirect, c, RUNS), () => direct(timer, specFile, bwrapDirect, c, RUNS))), "bwrap (direct)"),
    );
    rows.push(
      row(
        `load /bin/true, concurrency ${c}, via run()`,
        ...(await compare(
          () => timed(c, RUNS, async () => void (await run(spec))),
          () => timed(c, RUNS, () => runBwrap(rootfs)),
        )),
        "bwrap via child_process",
      ),
    );
  }
  const result = await soak(spec, TOTAL);
  console.error(`soak: ${JSON.stringify(result)}`);
  rmSync(dir, { recursive: true, force: true });
  const problems = [
    ...result.leftoverProcesses.map((p) => `left process: ${p}`),
    ...(result.mountsChanged ? ["the host's mountinfo changed"] : []),
    ...result.helperDirs.map((d) => `helper dir on the host: ${d}`),
    ...(result.fdsAfter > result.fdsBefore ? [`fds grew from ${result.fdsBefore} to ${result.fdsAfter}`] : []),
  ];
  if (problems.length > 0) throw new Error(`sandbox-load: leaks after ${result.instances} runs:\n${problems.join("\n")}`);
  return rows;
}

export function printRows(rows: BenchRow[]): void {
  console.log("| benchmark | castle ms | peer ms | peer | ratio | castle inst/s | peer inst/s |\n|---|---|---|---|---|---|---|");
  for (const r of rows)
    console.log(`| ${r.name} | ${r.castleMs} | ${r.peerMs} | ${r.peer} | ${r.ratio} | ${Math.round(1000 / r.castleMs)} | ${Math.round(1000 / r.peerMs)} |`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (!existsSync(BWRAP)) {
    console.error("bench/sandbox-load: bwrap is not installed (apt install bubblewrap)");
    process.exit(1);
  }
  printRows(await main());
}
