// Benchmark of `castle run <dir> -- /bin/true` of a fully cached system (the start-up a user
// feels when Castle is a command prefix), by a C driver with no Node in the loop
// (lib/spawn-timer.c), interleaved run by run, side by side with:
//   - the same sandbox spawned directly: castle-sandbox on the very spec the run replays (the
//     floor; the target is the fast path within 2× of it);
//   - bwrap running /bin/true on the system's base rootfs;
//   - the normal path: node on the bundle, evaluating the definition and looking every layer up;
//   - `node -e 0`, what any Node program pays (the normal path's own cost is the difference).
// On the cached 20-layer system, and on examples/distro when it is built in
// $CASTLE_BENCH_DISTRO_DIR/fastpath (CASTLE_BENCH_DISTRO=1 builds it there: minutes).
// Run: npx tsx bench/cli-run.ts

import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseEntry } from "../packages/cli/src/fastpath/entry-format";
import { entryName } from "../packages/cli/src/fastpath/entry-key";
import { BENCH_DIR, DISTRO, distroBenchProblem } from "./distro/common";
import { CASTLE, castle, ensureBundle, project } from "./lib/castle-cli";
import { printRows, row, type BenchRow } from "./lib/rows";

const ROUNDS = Number(process.env.CASTLE_BENCH_RUNS ?? 30);
const BIN = join(dirname(CASTLE), "castle");
const HELPER = join(dirname(CASTLE), "castle-sandbox");

/** The spawn-timer binary, compiled into a temp dir. */
function timer(): string {
  const dir = mkdtempSync(join(tmpdir(), "castle-bench-timer-"));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, "spawn-timer");
  execFileSync("cc", ["-O2", "-o", out, join(import.meta.dirname, "lib/spawn-timer.c")]);
  return out;
}

/**
 * Primes the fast path for `castle run dir -- /bin/true` (a run, the racy window, a run that
 * writes the entry), checks the launcher takes it, and writes the spec it replays to a file.
 */
function prime(dir: string, env: NodeJS.ProcessEnv, specFile: string): void {
  const args = ["run", dir, "--", "/bin/true"];
  const normal = () => {
    const r = spawnSync(process.execPath, [CASTLE, ...args], { env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    if (r.status !== 0) throw new Error(`castle run failed (${r.status}): ${r.stderr}`);
  };
  normal();
  execFileSync("sleep", ["2.1"]);
  normal();
  const check = spawnSync(BIN, args, { env: { ...env, CASTLE_FASTPATH_DEBUG: "1" }, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  if (!check.stderr.includes("castle: fast path: taken")) throw new Error(`the fast path is not taken: ${check.stderr}`);
  const store = env.CASTLE_CACHE_DIR!;
  const entry = parseEntry(readFileSync(join(store, "fastpath", entryName({ dir, arg: dir, tty: false, command: ["/bin/true"] }))));
  writeFileSync(specFile, entry.spec);
}

interface Medians {
  direct: number;
  fast: number;
  normal: number;
  bwrap?: number;
  node: number;
}

function measure(timerBin: string, dir: string, env: NodeJS.ProcessEnv, specFile: string, rootfs?: string): Medians {
  const sides: string[][] = [
    [HELPER, "--spec-fd", "3"],
    [BIN, "run", dir, "--", "/bin/true"],
    [process.execPath, CASTLE, "run", dir, "--", "/bin/true"],
    [process.execPath, "-e", "0"],
    ...(rootfs ? [["/usr/bin/bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", rootfs, "/", "--proc", "/proc", "--dev", "/dev", "/bin/true"]] : []),
  ];
  const out = execFileSync(timerBin, [String(ROUNDS), specFile, ...sides.flatMap((side) => ["::", ...side])], { env, cwd: "/", encoding: "utf8" });
  const { medians, failed } = JSON.parse(out) as { medians: number[]; failed: number[] };
  if (failed.some((n) => n > 0)) throw new Error(`failed runs (direct, fast, normal, node, bwrap): ${failed.join(", ")}`);
  const [direct, fast, normal, node, bwrap] = medians as [number, number, number, number, number?];
  return { direct, fast, normal, node, ...(bwrap !== undefined ? { bwrap } : {}) };
}

function rows(label: string, m: Medians): BenchRow[] {
  return [
    row(`${label}: fast path vs the same sandbox spawned directly (target ≤ 2×)`, m.fast, m.direct, "castle-sandbox on the replayed spec"),
    ...(m.bwrap !== undefined ? [row(`${label}: fast path vs bwrap`, m.fast, m.bwrap, "bwrap /bin/true on the base rootfs")] : []),
    row(`${label}: fast path vs the normal path`, m.fast, m.normal, "castle run through node"),
    row(`${label}: normal path vs Node start (its own cost ${(m.normal - m.node).toFixed(0)} ms)`, m.normal, m.node, "node -e 0"),
  ];
}

/** The distro's rows, or none (with the reason printed) when it is not built and may not be. */
async function distroRows(timerBin: string): Promise<BenchRow[]> {
  const dir = join(BENCH_DIR, "fastpath");
  const env = {
    ...process.env,
    CASTLE_CACHE_DIR: join(dir, "cache"),
    CASTLE_STATE_DIR: join(dir, "state"),
    CASTLE_DATA_DIR: join(dir, "data"),
    CASTLE_MIRRORS: join(BENCH_DIR, "mirror"),
    CI: "1",
  };
  const built = existsSync(join(dir, "cache/roots/distro.json"));
  if (!built && process.env.CASTLE_BENCH_DISTRO !== "1") {
    console.warn(`cli-run: distro rows skipped: the distro is not built in ${dir} (CASTLE_BENCH_DISTRO=1 builds it: minutes on 2 cores)`);
    return [];
  }
  if (!built) {
    const problem = await distroBenchProblem();
    if (problem) {
      console.warn(`cli-run: distro rows skipped: ${problem}`);
      return [];
    }
    const { prepareFiles } = await import("./distro/common");
    await prepareFiles();
    mkdirSync(dir, { recursive: true });
    castle({ dir: DISTRO, rootfs: "", env }, ["build", DISTRO, "--plain"]);
  }
  const specFile = join(dir, "distro.spec");
  prime(DISTRO, env, specFile);
  return rows("`castle run -- /bin/true`, the distro (9 layers)", measure(timerBin, DISTRO, env, specFile));
}

export async function main(): Promise<BenchRow[]> {
  ensureBundle();
  const timerBin = timer();
  const p = project("run20", (rootfs) => {
    // bwrap mounts /proc and /dev on directories that must exist.
    for (const sub of ["proc", "dev"]) mkdirSync(join(rootfs, sub), { recursive: true });
    return `import { layer, source, system } from "castle";
const base = layer.import({ name: "base", from: source.local(${JSON.stringify(rootfs)}) });
let previous = base;
for (let i = 0; i < 19; i++) previous = layer({ name: "l" + i, runDeps: [previous], script: "echo " + i + " > /l" + i });
export default system({ name: "run20", layers: [previous] });
`;
  });
  castle(p, ["build", p.dir]);
  const specFile = join(dirname(p.dir), "run20.spec");
  prime(p.dir, p.env, specFile);
  const out = rows("`castle run -- /bin/true`, 20 cached layers", measure(timerBin, p.dir, p.env, specFile, p.rootfs));
  return [...out, ...(await distroRows(timerBin))];
}

if (import.meta.url === `file://${process.argv[1]}`) printRows(await main());
