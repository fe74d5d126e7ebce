// Benchmark: starting `/bin/true` in a fully isolated sandbox over a busybox rootfs, Castle's
// castle-sandbox against `bwrap --unshare-all --die-with-parent --ro-bind ROOT / --proc /proc
// --dev /dev`, interleaved run by run so machine noise hits both alike. Measured twice: by a tiny
// C driver (bench/lib/spawn-timer.c: fork + exec + wait, no Node in the loop) and through the TS
// API (`run()` against child_process + bwrap), so Node's own overhead shows separately; each as
// this user and as uid 65534. Then overlay roots of 2, 100 and 500 lowers (kernel overlayfs), a
// writable root (2 lowers + an upper in $CASTLE_BENCH_DIR or the temp dir, with and without
// `volatile`), and 2 lowers with fuse-overlayfs where it works, against the same bwrap bind.
// Run: npx tsx bench/sandbox-spawn.ts   (exports main() for bench/run.ts)

import { execFileSync, spawn as spawnChild } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { helperPath, probe, run, serializeSpec, type SandboxSpec } from "../packages/sandbox/src/index";
import { type BenchRow, median, row } from "./lib/rows";

const RUNS = Number(process.env.CASTLE_BENCH_RUNS ?? 200);
const here = dirname(fileURLToPath(import.meta.url));
const BWRAP_ARGS = ["--unshare-all", "--die-with-parent", "--ro-bind", "ROOT", "/", "--proc", "/proc", "--dev", "/dev", "/bin/true"];
const NOBODY = { uid: 65534, gid: 65534 };

/** Bench dir (world-readable, for uid 65534): rootfs, layers, specs and the timer binary. */
function prepare(): { dir: string; rootfs: string; timer: string; layers: (n: number) => string[] } {
  const dir = join(process.env.CASTLE_BENCH_DIR ?? tmpdir(), "castle-bench-sandbox");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(dir, 0o755);
  const rootfs = join(dir, "rootfs");
  for (const sub of ["bin", "etc", "proc", "dev", "tmp"]) mkdirSync(join(rootfs, sub), { recursive: true, mode: 0o755 });
  copyFileSync("/bin/busybox", join(rootfs, "bin/busybox"));
  chmodSync(join(rootfs, "bin/busybox"), 0o755);
  for (const applet of ["true", "sh", "cat"]) symlinkSync("busybox", join(rootfs, "bin", applet));
  const timer = join(dir, "spawn-timer");
  execFileSync("cc", ["-O2", "-o", timer, join(here, "lib/spawn-timer.c")]);
  const layers = (n: number) =>
    Array.from({ length: n }, (_, i) => {
      const layer = join(dir, "layers", String(i));
      mkdirSync(layer, { recursive: true, mode: 0o755 });
      writeFileSync(join(layer, `file-${i}`), `${i}\n`);
      return layer;
    });
  execFileSync("chmod", ["-R", "a+rX", dir]);
  return { dir, rootfs, timer, layers };
}

/** Medians (ms) of the castle spec and bwrap, interleaved, via the C driver. */
function direct(timer: string, dir: string, name: string, spec: SandboxSpec, rootfs: string, runs: number, asUser?: typeof NOBODY): [number, number] {
  const specFile = join(dir, `${name}.spec`);
  writeFileSync(specFile, serializeSpec(spec), { mode: 0o644 });
  const bwrap = BWRAP_ARGS.map((arg) => (arg === "ROOT" ? rootfs : arg));
  const out = execFileSync(timer, [String(runs), specFile, "--", helperPath(), "--spec-fd", "3", "--", "/usr/bin/bwrap", ...bwrap], {
    encoding: "utf8",
    cwd: "/",
    ...(asUser ? asUser : {}),
  });
  const { medians, failed } = JSON.parse(out) as { medians: [number, number]; failed: [number, number] };
  if (failed[0] || failed[1]) throw new Error(`${name}: ${failed[0]} castle and ${failed[1]} bwrap runs failed`);
  return medians;
}

function runBwrap(rootfs: string, asUser?: typeof NOBODY): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawnChild("/usr/bin/bwrap", BWRAP_ARGS.map((arg) => (arg === "ROOT" ? rootfs : arg)), {
      stdio: ["ignore", "pipe", "pipe"],
      cwd: "/",
      ...(asUser ? asUser : {}),
    });
    child.stdout.resume();
    child.stderr.resume();
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`bwrap exited ${code}`))));
  });
}

/** Medians (ms) of `run()` and of bwrap through child_process, interleaved. */
async function viaNode(spec: SandboxSpec, rootfs: string, runs: number, asUser?: typeof NOBODY): Promise<[number, number]> {
  const castle: number[] = [];
  const peer: number[] = [];
  for (let i = 0; i < runs; i++) {
    let t = performance.now();
    const r = await run(spec, asUser ? { asUser } : {});
    castle.push(performance.now() - t);
    if (r.code !== 0) throw new Error(`run() exited ${r.code}: ${r.stderr}`);
    t = performance.now();
    await runBwrap(rootfs, asUser);
    peer.push(performance.now() - t);
  }
  return [median(castle), median(peer)];
}

export async function main(): Promise<BenchRow[]> {
  const { dir, rootfs, timer, layers } = prepare();
  const rows: BenchRow[] = [];
  const asRoot = process.getuid?.() === 0;
  const callers: [string, typeof NOBODY | undefined][] = [[asRoot ? "root" : "caller", undefined]];
  if (asRoot) callers.push(["uid 65534", NOBODY]);
  const trueSpec: SandboxSpec = { root: { lowers: [rootfs] }, argv: ["/bin/true"] };

  for (const [who, asUser] of callers) {
    rows.push(row(`spawn /bin/true, direct (${who})`, ...direct(timer, dir, "true", trueSpec, rootfs, RUNS, asUser), "bwrap"));
    rows.push(row(`spawn /bin/true, via run() (${who})`, ...(await viaNode(trueSpec, rootfs, Math.min(RUNS, 100), asUser)), "bwrap via child_process"));
  }
  const many = layers(499);
  for (const n of [2, 100, 500]) {
    const spec: SandboxSpec = { root: { lowers: [rootfs, ...many.slice(0, n - 1)] }, argv: ["/bin/true"], overlay: "kernel" };
    rows.push(row(`overlay root, ${n} lowers, kernel (direct)`, ...direct(timer, dir, `ov${n}`, spec, rootfs, n === 500 ? 50 : 100), "bwrap (ro-bind)"));
  }
  // A writable root: overlayfs syncs the upper's whole filesystem at unmount unless volatile.
  for (const volatile of [false, true]) {
    const upper = join(dir, `upper-${volatile}`);
    const work = join(dir, `work-${volatile}`);
    mkdirSync(upper);
    mkdirSync(work);
    const spec: SandboxSpec = { root: { lowers: [rootfs, many[0] as string], upper, work, volatile }, argv: ["/bin/true"], overlay: "kernel" };
    const name = `overlay root, 2 lowers + upper${volatile ? ", volatile" : ""} (direct)`;
    rows.push(row(name, ...direct(timer, dir, `upper-${volatile}`, spec, rootfs, 100), "bwrap (ro-bind)"));
  }
  if ((await probe()).fuseOverlay.ok) {
    const spec: SandboxSpec = { root: { lowers: [rootfs, many[0] as string] }, argv: ["/bin/true"], overlay: "fuse" };
    rows.push(row("overlay root, 2 lowers, fuse-overlayfs (direct)", ...direct(timer, dir, "fuse2", spec, rootfs, 30), "bwrap (ro-bind)"));
  }
  rmSync(dir, { recursive: true, force: true });
  return rows;
}

export function printRows(rows: BenchRow[]): void {
  console.log("| benchmark | castle ms | peer ms | peer | ratio |\n|---|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.name} | ${r.castleMs} | ${r.peerMs} | ${r.peer} | ${r.ratio} |`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (!existsSync("/usr/bin/bwrap")) {
    console.error("bench/sandbox-spawn: bwrap is not installed (apt install bubblewrap)");
    process.exit(1);
  }
  printRows(await main());
}
