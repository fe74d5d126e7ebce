// Tests reading a recorded run back (cli/src/history/timeline.ts): each layer's outcome, key,
// reason and times (dependencies ready, slot wait, work, end), an import's fetch time from its
// record, sources, CPU samples, and the critical path.

import { describe, expect, it } from "vitest";
import { criticalPath, timelineOf, type LayerTimeline } from "../src/history/timeline";
import { recordedRun } from "./helpers/history-run";

describe("timelineOf", () => {
  const timeline = timelineOf(recordedRun());
  const layer = (name: string) => timeline.layers.find((l) => l.name === name)!;

  it("follows each layer from queued to its end", () => {
    expect(timeline.layers.map((l) => [l.name, l.outcome])).toEqual([["src", "imported"], ["a", "built"], ["b", "built"], ["c", "built"], ["old", "cached"]]);
    expect(layer("a")).toMatchObject({ kind: "build", waitsFor: ["src"], expectedMs: 2500, depsReadyAt: 1000, workFrom: 1000, endedAt: 4000, key: "k-a", logPath: "/logs/a.log", jobs: 2 });
    expect(layer("a").reason).toEqual({ kind: "changed", changes: ["script changed"] });
    expect(layer("c")).toMatchObject({ depsReadyAt: 4000, slotWaitFrom: 3500, workFrom: 4000, endedAt: 6000 });
    // An import began when its source began: its record holds how long that took.
    expect(layer("src")).toMatchObject({ workFrom: 0, endedAt: 1000 });
    expect(layer("old")).toMatchObject({ outcome: "cached", workFrom: undefined, endedAt: 10 });
  });

  it("keeps the sources, the CPU samples, the build slots and the result", () => {
    expect(timeline.sources).toEqual([{ name: "src-files", startedAt: 0, endedAt: 900, fetchedBytes: 5_000_000 }]);
    expect(timeline.cpu).toHaveLength(12);
    expect(timeline.jobs).toBe(2);
    expect(timeline.endedAt).toBe(6000);
    expect(timeline.result?.ok).toBe(true);
  });

  it("finds the critical path: from the last layer back through the dependency that ended last", () => {
    expect(timeline.criticalPath).toEqual(["src", "a", "c"]);
    const l = (name: string, workFrom: number | undefined, endedAt: number, waitsFor: string[] = []) => ({ name, workFrom, endedAt, waitsFor }) as LayerTimeline;
    // A cached layer on the way is passed through, not listed.
    expect(criticalPath([l("x", 0, 5000), l("cached", undefined, 10, ["x"]), l("y", 5000, 9000, ["cached"])])).toEqual(["y"]);
    expect(criticalPath([l("x", 0, 5000), l("y", 5000, 9000, ["x"])])).toEqual(["x", "y"]);
    expect(criticalPath([])).toEqual([]);
  });
});
