// Benchmarks of the engine (issue: graph, store and scheduler):
// - a no-op rebuild of a 50-layer graph, everything cached: the whole `castle build` command,
//   against its 300 ms target and beside `node -e 0` (what any Node CLI pays to start);
// - the overhead of an empty layer (sandbox + digest + commit), per layer, against its 30 ms
//   target and beside bwrap running /bin/true (the sandbox alone);
// - scheduler efficiency on a wide graph of `sleep` layers: wall time / critical path.
// Run: npx tsx bench/graph-scheduler.ts

import { spawnSync } from "node:child_process";
import { ensureBundle, castle, project } from "./lib/castle-cli";
import { interleave, median, printRows, row, type BenchRow } from "./lib/rows";

const ROUNDS = Number(process.env.CASTLE_BENCH_RUNS ?? 7);

function chainDefinition(layers: number, script: (i: number) => string, jobsIndependent = false) {
  return (rootfs: string) => `import { layer, source, system } from "castle";
const base = layer.import({ name: "base", from: source.local(${JSON.stringify(rootfs)}) });
const layers = [];
let previous = base;
for (let i = 0; i < ${layers}; i++) {
  const scripts = ${JSON.stringify(Array.from({ length: layers }, (_, i) => script(i)))};
  const l = layer({ name: "l" + i, runDeps: [${jobsIndependent ? "base" : "previous"}], script: scripts[i] });
  layers.push(l);
  previous = l;
}
export default system({ name: "bench", layers });
`;
}

async function noopRebuild(): Promise<BenchRow> {
  const p = project("noop", chainDefinition(50, (i) => `echo ${i} > /f${i}`));
  castle(p, ["build", p.dir, "--plain"]);
  const times = await interleave(ROUNDS, {
    castle: () => void castle(p, ["build", p.dir, "--plain"]),
    node: () => void spawnSync(process.execPath, ["-e", "0"]),
  });
  return row("no-op rebuild, 50 cached layers (`castle build`)", median(times.castle!), median(times.node!), "node -e 0 (target: castle ≤ 300 ms)");
}

async function emptyLayerOverhead(): Promise<BenchRow> {
  const count = 20;
  const rows: number[] = [];
  const bwrap: number[] = [];
  for (let round = 0; round < 3; round++) {
    const p = project(`empty${round}`, chainDefinition(count, (i) => `true # ${round}-${i}`, true));
    castle(p, ["build", p.dir, "--plain", "-j", "1"]); // warm: base imported
    const p2 = project(`empty-b${round}`, chainDefinition(count, (i) => `true # again ${round}-${i}`, true));
    p2.env.CASTLE_CACHE_DIR = p.env.CASTLE_CACHE_DIR;
    const start = performance.now();
    castle(p2, ["build", p2.dir, "--plain", "-j", "1"]);
    rows.push((performance.now() - start) / count);
    const bstart = performance.now();
    for (let i = 0; i < count; i++) {
      spawnSync("bwrap", ["--unshare-all", "--die-with-parent", "--ro-bind", p.rootfs, "/", "--proc", "/proc", "--dev", "/dev", "/bin/true"]);
    }
    bwrap.push((performance.now() - bstart) / count);
  }
  return row("empty layer overhead, per layer (20 layers, -j 1)", median(rows), median(bwrap), "bwrap /bin/true (target: castle ≤ 30 ms)");
}

async function schedulerEfficiency(): Promise<BenchRow> {
  // Two levels: 4 independent sleeps of 1 s, then 4 more each on one of them: critical path 2 s.
  const definition = (rootfs: string) => `import { layer, source, system } from "castle";
const base = layer.import({ name: "base", from: source.local(${JSON.stringify(rootfs)}) });
const first = [0, 1, 2, 3].map((i) => layer({ name: "a" + i, runDeps: [base], script: "sleep 1; echo " + i + " > /a" + i + " # ${Date.now()}" }));
const second = first.map((dep, i) => layer({ name: "b" + i, runDeps: [dep], script: "sleep 1; echo " + i + " > /b" + i + " # ${Date.now()}" }));
export default system({ name: "wide", layers: second });
`;
  const p = project("wide", definition);
  castle(p, ["build", p.dir, "--plain", "-j", "8", "--rebuild", "base"]);
  // The scheduler's own wall time (from its first event to the last), without Node's start-up
  // and the definition's compilation, which the other rows measure. Median of 3 fresh builds.
  const walls: number[] = [];
  for (let round = 0; round < 3; round++) {
    const again = project(`wide-again${round}`, (rootfs) => definition(rootfs).replace(/# \d+/g, `# again ${round}`));
    again.env.CASTLE_CACHE_DIR = p.env.CASTLE_CACHE_DIR;
    const { stdout } = castle(again, ["build", again.dir, "--plain", "-j", "8", "--json"]);
    walls.push((JSON.parse(stdout) as { stats: { wallMs: number } }).stats.wallMs);
  }
  const wall = median(walls);
  return row("scheduler: 8 sleep layers, critical path 2 s (-j 8)", wall, 2000, "critical path (target ratio ≤ 1.05)");
}

export async function main(): Promise<BenchRow[]> {
  ensureBundle();
  return [await noopRebuild(), await emptyLayerOverhead(), await schedulerEfficiency()];
}

if (import.meta.url === `file://${process.argv[1]}`) printRows(await main());
