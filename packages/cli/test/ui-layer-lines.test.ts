// Tests the words both views use for finished layers and failures (cli/src/ui/layer-lines.ts).

import { describe, expect, it } from "vitest";
import { failureBlock, finishedLine } from "../src/ui/layer-lines";
import type { LayerPhase } from "../src/ui/view-state";

const layer = (phase: LayerPhase) => ({ name: "musl", kind: "build" as const, waitsFor: [], expectedMs: undefined, phase, pushedBytes: undefined });
const done = (origin: "built" | "pulled" | "local" | "merged", extra: Partial<Extract<LayerPhase, { kind: "done" }>> = {}): LayerPhase => ({
  kind: "done", origin, cacheHit: false, durationMs: 21_400, recordedMs: undefined, bytes: undefined, ...extra,
});

describe("finishedLine", () => {
  it("says how each layer ended", () => {
    expect(finishedLine(layer(done("built")))).toBe("built musl in 21.4s");
    expect(finishedLine(layer(done("pulled", { bytes: 5_000_000, durationMs: 1200 })))).toBe("pulled musl (5.0 MB in 1.2s)");
    expect(finishedLine(layer(done("pulled", { durationMs: 1200 })))).toBe("pulled musl (1.2s)");
    expect(finishedLine(layer(done("local", { cacheHit: true })))).toBe("cached musl");
    expect(finishedLine(layer(done("local")))).toBe("ready musl");
    expect(finishedLine(layer(done("merged")))).toBe("ready musl");
    expect(finishedLine(layer({ kind: "failed", message: "it broke\nhint: x", code: undefined, stopped: false }))).toBe("failed musl: it broke");
    expect(finishedLine(layer({ kind: "failed", message: "killed", code: undefined, stopped: true }))).toBe("stopped musl: the build was interrupted");
    expect(finishedLine(layer({ kind: "skipped", because: "lua failed" }))).toBe("skipped musl: lua failed");
  });
});

describe("failureBlock", () => {
  it("gives the message, its further lines, the log tail and the log path", () => {
    expect(failureBlock({ layer: "lua", message: "build failed\nhint: run castle why", code: "X", logTail: ["a", "\x1b[31mb\x1b[0m"], logPath: "/l" })).toEqual([
      "error: lua failed: build failed",
      "  hint: run castle why",
      "last 2 lines of the log of lua:",
      "  | a",
      "  | b",
      "full log: /l",
    ]);
    expect(failureBlock({ layer: "lua", message: "no log", code: undefined, logTail: [], logPath: undefined })).toEqual(["error: lua failed: no log"]);
  });
});
