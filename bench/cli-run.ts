// Benchmark of `castle run` on a fully cached 20-layer system (the start-up a user feels), side
// by side in one run with bwrap running /bin/true on the same base rootfs, and with `node -e 0`
// (what any Node program pays before doing anything). Target: Castle within 40 ms of node -e 0.
// Run: npx tsx bench/cli-run.ts

import { spawnSync } from "node:child_process";
import { CASTLE, castle, ensureBundle, project } from "./lib/castle-cli";
import { interleave, median, printRows, row, type BenchRow } from "./lib/rows";

const ROUNDS = Number(process.env.CASTLE_BENCH_RUNS ?? 30);

export async function main(): Promise<BenchRow[]> {
  ensureBundle();
  const p = project("run20", (rootfs) => `import { layer, source, system } from "castle";
const base = layer.import({ name: "base", from: source.local(${JSON.stringify(rootfs)}) });
let previous = base;
for (let i = 0; i < 19; i++) previous = layer({ name: "l" + i, runDeps: [previous], script: "echo " + i + " > /l" + i });
export default system({ name: "run20", layers: [previous] });
`);
  castle(p, ["run", p.dir, "--", "/bin/true"]);
  const times = await interleave(ROUNDS, {
    castle: () => {
      const r = spawnSync(process.execPath, [CASTLE, "run", p.dir, "--", "/bin/true"], { env: p.env, stdio: "ignore" });
      if (r.status !== 0) throw new Error(`castle run failed: ${r.status}`);
    },
    bwrap: () => void spawnSync("bwrap", ["--unshare-all", "--die-with-parent", "--ro-bind", p.rootfs, "/", "--proc", "/proc", "--dev", "/dev", "/bin/true"]),
    node: () => void spawnSync(process.execPath, ["-e", "0"]),
  });
  const castleMs = median(times.castle!);
  const nodeMs = median(times.node!);
  return [
    row("`castle run -- /bin/true`, 20 cached layers", castleMs, median(times.bwrap!), "bwrap /bin/true"),
    row(`\`castle run\` vs Node start (Castle's own cost ${(castleMs - nodeMs).toFixed(0)} ms; target ≤ 40)`, castleMs, nodeMs, "node -e 0"),
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) printRows(await main());
