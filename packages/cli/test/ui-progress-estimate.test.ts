// Tests the progress fraction, the ETA and the time saved (cli/src/ui/progress-estimate.ts):
// weighting by expected build times, partial credit for running layers, the simulated schedule
// on the build slots, overruns, unknown times, pulls.

import { describe, expect, it } from "vitest";
import type { BuildEvent } from "@castle/graph";
import { estimateProgress, estimateSaved, paceOf } from "../src/ui/progress-estimate";
import { initialState, reduce, reduceAll, type ViewState } from "../src/ui/view-state";
import { keyRecord, queued, scriptedBuild } from "./helpers/ui-scripted-build";

const building = (layer: string): BuildEvent => ({ type: "building", layer, key: "k", reason: { kind: "new", changes: [] }, logPath: "/l", jobs: 1 });
const built = (layer: string, buildMs: number): BuildEvent => ({ type: "done", layer, key: "k", record: keyRecord(layer, buildMs, 1), origin: "built" });

function queue(names: string[], expectedMs: Record<string, number> = {}): ViewState {
  return reduceAll(initialState(), names.map((name) => queued(name, { expectedMs: expectedMs[name] })), 0);
}
const cached = (layer: string, buildMs = 1): BuildEvent => ({ type: "done", layer, key: "k", record: keyRecord(layer, buildMs, 1), origin: "local" });

describe("estimateProgress", () => {
  it("knows nothing before any event", () => {
    expect(estimateProgress(initialState(), 10)).toEqual({ finished: 0, total: 0, fraction: 0, elapsedMs: 0, etaMs: undefined, etaIsLowerBound: false });
  });

  it("weights finished layers by their expected build time", () => {
    let state = queue(["small", "big"], { small: 1000, big: 9000 });
    state = reduce(state, cached("small"), 100);
    expect(estimateProgress(state, 100).fraction).toBeCloseTo(0.1);
    state = queue(["small", "big"], { small: 1000, big: 9000 });
    state = reduce(state, cached("big"), 100);
    expect(estimateProgress(state, 100).fraction).toBeCloseTo(0.9);
  });

  it("gives layers without an expected time the mean of the known ones", () => {
    let state = queue(["a", "b", "c"], { a: 1000, b: 3000 });
    state = reduce(state, cached("c"), 0);
    expect(estimateProgress(state, 0).fraction).toBeCloseTo(2000 / 6000);
  });

  it("counts layers equally when no expected times are known", () => {
    let state = queue(["a", "b", "c", "d"]);
    state = reduce(state, { type: "skipped", layer: "a", because: "x" }, 0);
    expect(estimateProgress(state, 0).fraction).toBeCloseTo(0.25);
  });

  it("credits running builds with their elapsed share, and pulls with their bytes, below 100%", () => {
    let state = queue(["a", "b"], { a: 10_000, b: 10_000 });
    state = reduce(state, building("a"), 0);
    expect(estimateProgress(state, 5000).fraction).toBeCloseTo(0.25);
    expect(estimateProgress(state, 60_000).fraction).toBeCloseTo(0.475);
    state = reduce(state, { type: "pulling", layer: "b", key: "k", bytesDone: 50, bytesTotal: 100 }, 0);
    expect(estimateProgress(state, 5000).fraction).toBeCloseTo(0.5);
  });

  it("estimates the time left from expected times, less what running builds have done", () => {
    let state = reduce(queue(["a", "b"], { a: 10_000, b: 4000 }), { type: "started", jobs: 1 }, 0);
    state = reduce(state, building("a"), 1000);
    expect(estimateProgress(state, 4000)).toMatchObject({ etaMs: 7000 + 4000, etaIsLowerBound: false });
  });

  it("schedules what is left on the build slots, dependencies first, longest path first", () => {
    // a → c, b alone; two slots: a and b run together, then c after a: 8 + 8 = 16 s.
    let state = reduceAll(initialState(), [
      { type: "started", jobs: 2 }, queued("a", { expectedMs: 8000 }), queued("b", { expectedMs: 8000 }), queued("c", { expectedMs: 8000, waitsFor: ["a"] }),
    ], 0);
    expect(estimateProgress(state, 0).etaMs).toBe(16_000);
    // One slot: all three one after another.
    state = reduce(state, { type: "started", jobs: 1 }, 0);
    expect(estimateProgress(state, 0).etaMs).toBe(24_000);
    // Imports take no build slot (they fetch), merges take no time.
    const imports = reduceAll(initialState(), [
      { type: "started", jobs: 1 }, queued("src", { kind: "import", expectedMs: 5000 }), queued("x", { expectedMs: 3000 }),
      queued("all", { kind: "merge", waitsFor: ["src", "x"] }),
    ], 0);
    expect(estimateProgress(imports, 0).etaMs).toBe(5000);
  });

  it("never sits at zero or grows with time while a build overruns its recorded time", () => {
    let state = reduce(queue(["a"], { a: 10_000 }), building("a"), 0);
    const late = [15_000, 30_000, 60_000].map((now) => estimateProgress(state, now).etaMs);
    expect(late).toEqual([500, 500, 500]);
    state = reduce(state, built("a", 61_000), 61_000);
    expect(estimateProgress(state, 61_000).etaMs).toBe(0);
  });

  it("says unknown when nothing left has a recorded time, and 'at least' when only some have", () => {
    let state = queue(["a", "b", "c"]);
    state = reduce(state, building("a"), 0);
    expect(estimateProgress(state, 1000)).toMatchObject({ etaMs: undefined, etaIsLowerBound: false });
    state = reduce(state, built("a", 6000), 6000);
    expect(estimateProgress(state, 6000).etaMs).toBeUndefined();
    const some = queue(["a", "b"], { a: 4000 });
    expect(estimateProgress(some, 0)).toMatchObject({ etaMs: 4000, etaIsLowerBound: true });
  });

  it("counts a pull by its bytes left at its rate, and a cached layer as done", () => {
    let state = queue(["a", "b"], { a: 10_000, b: 10_000 });
    state = reduce(state, { type: "cache-hit", layer: "a", key: "k", digest: "d" }, 0);
    state = reduce(state, { type: "pulling", layer: "b", key: "k", bytesDone: 0, bytesTotal: 3000 }, 0);
    state = reduce(state, { type: "pulling", layer: "b", key: "k", bytesDone: 1000, bytesTotal: 3000 }, 1000);
    expect(estimateProgress(state, 1000).etaMs).toBe(2000);
  });

  it("scales what is left by this run's pace against its records, as far as the finished work tells", () => {
    const layers = [queued("done1", { expectedMs: 20_000 }), queued("done2", { expectedMs: 20_000 }), queued("next", { expectedMs: 40_000 })];
    let state = reduceAll(initialState(), [{ type: "started", jobs: 1 }, ...layers], 0);
    expect(paceOf(state)).toBe(1);
    // The first two took half their recorded time: half the work is done at that pace.
    state = reduceAll(state, [building("done1")], 0);
    state = reduce(state, built("done1", 10_000), 10_000);
    // 20 s of records took 10 s: pace 0.5, trusted by a quarter (20 of 80 s) → 0.875.
    expect(paceOf(state)).toBeCloseTo(0.875);
    state = reduce(state, building("done2"), 10_000);
    state = reduce(state, built("done2", 10_000), 20_000);
    // 40 s of records took 20 s: pace 0.5, trusted by half (40 of 80 s) → 0.75.
    expect(paceOf(state)).toBeCloseTo(0.75);
    expect(estimateProgress(state, 20_000).etaMs).toBe(30_000);
  });

  it("is complete with no time left once finished", () => {
    const steps = scriptedBuild();
    const state = steps.reduce((s, step) => reduce(s, step.event, step.at), initialState());
    expect(estimateProgress(state, 5000)).toEqual({ finished: 8, total: 8, fraction: 1, elapsedMs: 5000, etaMs: 0, etaIsLowerBound: false });
  });
});

describe("estimateSaved", () => {
  it("is what building the cached layers would have taken on the build slots, not the sum of their times", () => {
    const events: BuildEvent[] = [{ type: "started", jobs: 2 }];
    for (const name of ["a", "b", "c", "d"]) events.push(queued(name, { expectedMs: 60_000 }));
    for (const name of ["a", "b", "c", "d"]) events.push({ type: "cache-hit", layer: name, key: "k", digest: "d" }, cached(name, 60_000));
    const state = reduceAll(initialState(), events, 0);
    // Four one-minute builds on two slots: two minutes, where their sum is four.
    expect(estimateSaved(state)).toBe(120_000);
    expect(estimateSaved(reduceAll(initialState(), [queued("x")], 0))).toBeUndefined();
  });
});
