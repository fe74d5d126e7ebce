// Benchmark: how far the progress view's ETA is from the truth on the distro's second cold build
// — the store wiped, the history of the first build kept (so every layer has a recorded time, as
// after `rm -rf ~/.cache/castle` or on a machine that shares the state dir). The run is recorded
// like any other; its events are replayed into the view's state and the ETA read at 25, 50 and
// 75 % of the way, beside the time that was really left. The target: within ±25 %
// (ratio 0.75–1.25). Printed, not asserted. Also printed: the same replay with each layer's own
// time in this very run as its history — the error of the schedule simulation alone, without
// the machine being faster or slower than during the first build.
// Run: npx tsx bench/distro-eta.ts   (exports main() for bench/run.ts)

import { rmSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { listRuns, readRun, type RunLine } from "../packages/cli/src/history/run-file";
import { timelineOf } from "../packages/cli/src/history/timeline";
import { estimateProgress } from "../packages/cli/src/ui/progress-estimate";
import { initialState, reduce } from "../packages/cli/src/ui/view-state";
import { BENCH_DIR, DISTRO, castle, castleEnv, distroBenchProblem, prepareFiles } from "./distro/common";
import { printRows, row, type BenchRow } from "./lib/rows";

const POINTS = [0.25, 0.5, 0.75];

export async function main(): Promise<BenchRow[]> {
  const problem = await distroBenchProblem();
  if (problem) {
    console.warn(`distro-eta: skipped: ${problem}`);
    return [];
  }
  const { mirror } = await prepareFiles();
  const dir = join(BENCH_DIR, "eta");
  const env = castleEnv(dir, mirror);
  const state = join(dir, "state");
  rmSync(join(dir, "cache"), { recursive: true, force: true });
  if (listRuns(state, "distro").length === 0) {
    const first = await castle(["build", DISTRO, "--plain"], env);
    console.log(`distro-eta: first cold build (to have a history): ${(first.ms / 1000).toFixed(1)} s`);
    rmSync(join(dir, "cache"), { recursive: true, force: true });
  }
  const second = await castle(["build", DISTRO, "--plain"], env);
  console.log(`distro-eta: second cold build: ${(second.ms / 1000).toFixed(1)} s`);
  const run = readRun(listRuns(state, "distro")[0]!.file);
  const events = run.lines.flatMap((line) => ("event" in line ? [line] : []));
  const rows = replay(events, "history known").map(({ point, etaMs, leftMs }) =>
    row(`ETA at ${point * 100}% of the distro's second cold build (history known)`, etaMs, leftMs, "the time really left (target: ratio 0.75–1.25)"));
  // The simulation alone: each layer's history is its own time in this run.
  const own = new Map(timelineOf(run).layers.flatMap((l) => (l.workFrom !== undefined && l.endedAt !== undefined ? [[l.name, l.endedAt - l.workFrom] as const] : [])));
  replay(events.map((line) => (line.event.type === "queued" ? { t: line.t, event: { ...line.event, expectedMs: own.get(line.event.layer) } } : line)), "this run's own times");
  return rows;
}

/** The ETA at each point of the way, from the run's events replayed into the view's state. */
function replay(events: Extract<RunLine, { event: unknown }>[], label: string): { point: number; etaMs: number; leftMs: number }[] {
  const start = events.find((line) => line.event.type === "started")?.t ?? 0;
  const end = events.find((line) => line.event.type === "finished")?.t;
  if (end === undefined) throw new Error("the recorded run did not finish");
  return POINTS.map((point) => {
    const at = start + point * (end - start);
    let view = initialState();
    for (const line of events) if (line.t <= at) view = reduce(view, line.event, line.t);
    const estimate = estimateProgress(view, at);
    if (estimate.etaMs === undefined) throw new Error(`no ETA at ${point * 100}% (some layer had no recorded time)`);
    const leftMs = end - at;
    console.log(
      `distro-eta (${label}): at ${point * 100}% (${((at - start) / 1000).toFixed(1)} s): ETA ${(estimate.etaMs / 1000).toFixed(1)} s` +
        `${estimate.etaIsLowerBound ? " (at least)" : ""}, really left ${(leftMs / 1000).toFixed(1)} s (ratio ${(estimate.etaMs / leftMs).toFixed(2)})`,
    );
    return { point, etaMs: estimate.etaMs, leftMs };
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().then(printRows, (error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
