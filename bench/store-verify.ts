// Benchmark of what the store's protection of its trees costs a cached `castle run`, side by side
// in one run on one store:
// - `--verify` (every tree the run uses is digested again first) against the same run without it,
//   on the 20-layer system of cli-run.ts and on one whose top layer holds 100 MB;
// - sealed trees (each tree's own directory read-only, as the store leaves them) against the same
//   trees unsealed: a cached run pays one lstat per tree either way, so this shows the seal itself.
// Run: npx tsx bench/store-verify.ts

import { spawnSync } from "node:child_process";
import { chmodSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { CASTLE, castle, ensureBundle, project, type BenchProject } from "./lib/castle-cli";
import { interleave, median, printRows, row, type BenchRow } from "./lib/rows";

const ROUNDS = Number(process.env.CASTLE_BENCH_RUNS ?? 20);

function run20(name: string, topScript: string): BenchProject {
  return project(name, (rootfs) => `import { layer, source, system } from "castle";
const base = layer.import({ name: "base", from: source.local(${JSON.stringify(rootfs)}) });
let previous = base;
for (let i = 0; i < 18; i++) previous = layer({ name: "l" + i, runDeps: [previous], script: "echo " + i + " > /l" + i });
const top = layer({ name: "top", runDeps: [previous], script: ${JSON.stringify(topScript)} });
export default system({ name: "${name}", layers: [top] });
`);
}

function runOnce(p: BenchProject, extra: string[] = []): void {
  const r = spawnSync(process.execPath, [CASTLE, "run", p.dir, ...extra, "--", "/bin/true"], { env: p.env, stdio: "ignore" });
  if (r.status !== 0) throw new Error(`castle run ${extra.join(" ")} failed: ${r.status}`);
}

function setTreeModes(p: BenchProject, mode: number): void {
  const trees = join(p.env.CASTLE_CACHE_DIR!, "trees");
  for (const digest of readdirSync(trees)) chmodSync(join(trees, digest), mode);
}

export async function main(): Promise<BenchRow[]> {
  ensureBundle();
  const small = run20("verify20", "echo top > /top");
  const big = run20("verify100m", "head -c 100000000 /dev/urandom > /big");
  for (const p of [small, big]) castle(p, ["run", p.dir, "--", "/bin/true"]);
  const times = await interleave(ROUNDS, {
    plain: () => runOnce(small),
    verify: () => runOnce(small, ["--verify"]),
    bigPlain: () => runOnce(big),
    bigVerify: () => runOnce(big, ["--verify"]),
  });
  // Sealed (as committed) against the same trees unsealed, alternating the modes between rounds.
  const sealed: number[] = [];
  const unsealed: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    for (const [mode, into] of [[0o555, sealed], [0o755, unsealed]] as const) {
      setTreeModes(small, mode);
      const start = performance.now();
      runOnce(small);
      into.push(performance.now() - start);
    }
  }
  setTreeModes(small, 0o555);
  return [
    row("`castle run --verify -- /bin/true`, 20 cached layers (2 MB)", median(times.verify!), median(times.plain!), "the same run without --verify"),
    row("`castle run --verify -- /bin/true`, 20 cached layers, one of 100 MB", median(times.bigVerify!), median(times.bigPlain!), "the same run without --verify"),
    row("`castle run -- /bin/true`, 20 cached layers, trees sealed (0555)", median(sealed), median(unsealed), "the same trees unsealed (0755)"),
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) printRows(await main());
