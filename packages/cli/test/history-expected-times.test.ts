// Tests the build times a wiped store learns from the history (cli/src/history/expected-times.ts):
// the newest run that built or imported a layer says how long its work took; a layer only found
// in the cache, or never built, has no time.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { recordedTimes } from "../src/history/expected-times";
import { RunFile } from "../src/history/run-file";
import { recordedRun } from "./helpers/history-run";

const state = mkdtempSync(join(tmpdir(), "castle-times-"));
afterAll(() => rmSync(state, { recursive: true, force: true }));

describe("recordedTimes", () => {
  it("takes each layer's time from the newest run that built it", () => {
    const older = recordedRun();
    new RunFile(state, { ...older.header, id: "0a" }).append(older.lines);
    // A newer run where a took 5 s, and c was found in the cache.
    const newer = recordedRun();
    const lines = newer.lines.map((line) => {
      if (!("event" in line)) return line;
      const { event } = line;
      if (event.type === "done" && event.layer === "a") return { t: 6000, event };
      if ((event.type === "building" || event.type === "done") && event.layer === "c") {
        return event.type === "done" ? { t: line.t, event: { ...event, origin: "local" as const } } : { t: line.t, event: { type: "log" as const, layer: "c", line: "" } };
      }
      return line;
    });
    new RunFile(state, { ...newer.header, id: "0b" }).append(lines);
    expect(Object.fromEntries(recordedTimes(state, "demo"))).toEqual({ src: 1000, a: 5000, b: 1000, c: 2000 });
    expect(recordedTimes(state, "other").size).toBe(0);
  });
});
