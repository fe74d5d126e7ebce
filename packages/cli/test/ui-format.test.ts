// Tests how the progress views spell things (cli/src/ui/format.ts): bytes, durations, reasons,
// the summary line, and stripping a build's escape codes and control characters.

import { describe, expect, it } from "vitest";
import { describeReason, formatByteProgress, formatBytes, formatDuration, formatRate, stripTerminalControls, summarizeBuild } from "../src/ui/format";

describe("format", () => {
  it("spells bytes in decimal units", () => {
    expect([0, 999, 1000, 3_200_000, 5_000_000_000].map(formatBytes)).toEqual(["0 B", "999 B", "1.0 kB", "3.2 MB", "5.0 GB"]);
    expect(formatByteProgress(3_200_000, 5_000_000)).toBe("3.2/5.0 MB");
    expect(formatByteProgress(12, 900)).toBe("12/900 B");
    expect(formatRate(2_100_000)).toBe("2.1 MB/s");
  });

  it("spells durations", () => {
    expect([0, 300, 21_400, 59_949, 59_950, 62_000, 3_599_000, 7_500_000].map(formatDuration)).toEqual([
      "0.0s", "0.3s", "21.4s", "59.9s", "1m00s", "1m02s", "59m59s", "2h05m",
    ]);
    expect(formatDuration(-5)).toBe("0.0s");
  });

  it("says why a layer builds", () => {
    expect(describeReason({ kind: "new", changes: [] })).toBe("new");
    expect(describeReason({ kind: "forced", changes: ["x"] })).toBe("forced");
    expect(describeReason({ kind: "changed", changes: [] })).toBe("inputs changed");
    expect(describeReason({ kind: "changed", changes: ["a", "b", "c", "d"] })).toBe("a; b; +2 more");
  });

  it("strips escape sequences and controls, keeping what a carriage return left visible", () => {
    expect(stripTerminalControls("\x1b[1;31merror\x1b[0m: x")).toBe("error: x");
    expect(stripTerminalControls("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\")).toBe("link");
    expect(stripTerminalControls(" 10%\r 50%\r100%\r")).toBe("100%");
    expect(stripTerminalControls("a\tb\x07\x00c\x9b2Jd")).toBe("a\tbcd");
  });

  it("summarizes a build, leaving out what did not happen", () => {
    const stats = { layers: 3, built: 1, pulled: 0, cached: 2, failed: 0, pushedBytes: 0, pulledBytes: 0, wallMs: 1500, savedMs: 0 };
    const none = { skipped: 0, sources: 0, sourceBytes: 0, savedMs: undefined };
    expect(summarizeBuild(true, stats, none)).toBe("done: 3 layers (1 built, 0 pulled, 2 cached) in 1.5s");
    expect(summarizeBuild(false, { ...stats, layers: 1, failed: 1, pulledBytes: 2_000_000 }, { skipped: 2, sources: 3, sourceBytes: 85_200_000, savedMs: 90_000 })).toBe(
      "failed: 1 layer (1 built, 0 pulled, 2 cached, 1 failed, 2 skipped) in 1.5s; fetched 3 sources (85.2 MB), pulled 2.0 MB; the cache saved about 1m30s of building",
    );
    // The scheduler's sum of recorded times is not used: parallel builds would count twice.
    expect(summarizeBuild(true, { ...stats, savedMs: 345_000 }, none)).not.toContain("saved");
  });
});
