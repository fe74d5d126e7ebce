// Tests the progress fraction and ETA (cli/src/ui/progress-estimate.ts): weighting by expected
// build times, partial credit for running layers, parallelism, and the elapsed-rate fallback.

import { describe, expect, it } from "vitest";
import type { BuildEvent } from "@castle/graph";
import { estimateProgress } from "../src/ui/progress-estimate";
import { initialState, reduce, reduceAll, type ViewState } from "../src/ui/view-state";
import { keyRecord, queued, scriptedBuild } from "./helpers/ui-scripted-build";

const building = (layer: string): BuildEvent => ({ type: "building", layer, key: "k", reason: { kind: "new", changes: [] }, logPath: "/l", jobs: 1 });
const built = (layer: string, buildMs: number): BuildEvent => ({ type: "done", layer, key: "k", record: keyRecord(layer, buildMs, 1), origin: "built" });

function queue(names: string[], expectedMs: Record<string, number> = {}): ViewState {
  return reduceAll(initialState(), names.map((name) => queued(name, { expectedMs: expectedMs[name] })), 0);
}
const cached = (layer: string): BuildEvent => ({ type: "done", layer, key: "k", record: keyRecord(layer, 1, 1), origin: "local" });

describe("estimateProgress", () => {
  it("knows nothing before any event", () => {
    expect(estimateProgress(initialState(), 10)).toEqual({ finished: 0, total: 0, fraction: 0, elapsedMs: 0, etaMs: undefined });
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
    let state = queue(["a", "b"], { a: 10_000, b: 4000 });
    state = reduce(state, building("a"), 1000);
    expect(estimateProgress(state, 4000).etaMs).toBe(7000 + 4000);
  });

  it("divides the work left by the builds seen running at once, but not below the longest", () => {
    let state = queue(["a", "b", "c", "d"], { a: 8000, b: 8000, c: 8000, d: 8000 });
    state = reduceAll(state, [building("a"), building("b")], 0);
    // 8000 + 8000 + 8000 + 8000 over 2 builds at once
    expect(estimateProgress(state, 0).etaMs).toBe(16_000);
    state = reduceAll(state, [built("a", 8000), built("b", 8000), built("c", 8000)], 8000);
    expect(estimateProgress(state, 8000).etaMs).toBe(8000);
  });

  it("uses the builds of this run when no expected times were given", () => {
    let state = queue(["a", "b", "c"]);
    state = reduce(state, building("a"), 0);
    expect(estimateProgress(state, 1000).etaMs).toBeUndefined();
    state = reduce(state, built("a", 6000), 6000);
    expect(estimateProgress(state, 6000).etaMs).toBe(12_000);
  });

  it("falls back to the elapsed rate when nothing was built yet", () => {
    let state = queue(["a", "b", "c", "d"]);
    state = reduce(state, cached("a"), 2000);
    expect(estimateProgress(state, 2000)).toMatchObject({ elapsedMs: 2000, fraction: 0.25, etaMs: 6000 });
  });

  it("is complete with no time left once finished", () => {
    const steps = scriptedBuild();
    const state = steps.reduce((s, step) => reduce(s, step.event, step.at), initialState());
    expect(estimateProgress(state, 5000)).toEqual({ finished: 8, total: 8, fraction: 1, elapsedMs: 5000, etaMs: 0 });
  });
});
