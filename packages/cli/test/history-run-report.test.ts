// Tests saying what a recorded run did (cli/src/history/run-report.ts), as `castle why --run`
// prints it: one line per layer with its outcome and why, then the critical path.

import { describe, expect, it } from "vitest";
import { runReport } from "../src/history/run-report";
import { timelineOf } from "../src/history/timeline";
import { recordedRun } from "./helpers/history-run";

describe("runReport", () => {
  it("says what happened to every layer, and why it was built", () => {
    const timeline = timelineOf(recordedRun());
    expect(runReport(timeline, timeline.header.startedAt + 120_000)).toEqual([
      "run 0run of demo: castle build, 2026-01-02 03:04:05 UTC (2 min ago), succeeded in 6.0s",
      "  src: imported in 1.0s (its source was fetched)",
      "  a: built in 3.0s — script changed",
      "  b: built in 1.0s — never built before under this name",
      "  c: built in 2.0s — never built before under this name",
      "  old: cached (key k-old): its inputs were the same as a stored build's",
      "  critical path: src → a → c",
    ]);
  });
});
