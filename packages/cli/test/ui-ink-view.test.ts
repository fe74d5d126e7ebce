// Tests the TTY view (cli/src/ui/ink-view.tsx and its rows in ink-rows.tsx) with
// ink-testing-library: printed-once rows, live rows, the progress bar, the failure block and the
// outcome. (Written with createElement: the test suite only collects *.test.ts files.)

import { createElement } from "react";
import { render } from "ink-testing-library";
import { afterEach, describe, expect, it } from "vitest";
import { cleanup } from "ink-testing-library";
import { ProgressView, type ProgressViewProps } from "../src/ui/ink-view";
import { initialState, reduce, reduceAll, type ViewState } from "../src/ui/view-state";
import { queued, scriptedBuild } from "./helpers/ui-scripted-build";

afterEach(() => cleanup());

/** The state after the scripted events up to (and including) time `until`. */
function stateAt(until: number, options: Parameters<typeof scriptedBuild>[0] = {}, expectedMs?: Record<string, number>): ViewState {
  return scriptedBuild(options)
    .map((step) => (expectedMs && step.event.type === "queued" ? { ...step, event: { ...step.event, expectedMs: expectedMs[step.event.layer] } } : step))
    .filter((step) => step.at <= until)
    .reduce((state, step) => reduce(state, step.event, step.at), initialState());
}

const view = (props: ProgressViewProps) => createElement(ProgressView, props);

describe("ProgressView", () => {
  it("shows live rows for pulling and building layers, and the progress bar", () => {
    const pulling = render(view({ state: stateAt(2100, {}, {}), now: 2100 }));
    const frame = pulling.lastFrame() ?? "";
    expect(frame).toMatch(/↓ zlib\s+3\.2\/5\.0 MB 64%\s+1\.6 MB\/s/);
    // Without recorded build times the ETA says so, rather than guess from the time gone by.
    expect(frame).toMatch(/[█░]{24}\s+52%\s+3\/8 layers\s+0 built · 0 pulled · 3 cached\s+2\.1s · ETA unknown/);
    expect(frame).not.toContain("cached busybox");
    // With lua's and app's recorded times: docs has none, so the ETA is a lower bound.
    const known = render(view({ state: stateAt(2100), now: 2100 })).lastFrame() ?? "";
    expect(known).toMatch(/ETA ≥ 6\.0s/);

    const building = render(view({ state: stateAt(3000), now: 3500 }));
    const lines = (building.lastFrame() ?? "").split("\n");
    expect(lines).toContain("↓ pulled zlib (5.0 MB in 2.5s)");
    expect(lines.some((l) => /^\S lua\s+0\.8s\s+cc lua3\.c$/.test(l))).toBe(true);
    expect(lines.some((l) => /^\S app\s+0\.8s\s+make app step 3$/.test(l))).toBe(true);
    expect(lines.join("\n")).not.toContain("\x1b[32mcc");
  });

  it("prints finished layers once, above the live area, and cached ones only when verbose", () => {
    const app = render(view({ state: stateAt(100), now: 100, verbose: true }));
    app.rerender(view({ state: stateAt(4000), now: 4000, verbose: true }));
    const frame = app.lastFrame() ?? "";
    for (const row of ["· cached busybox", "· cached musl", "↓ pulled zlib (5.0 MB in 2.5s)", "⚠ warning: export of zlib", "✔ built lua in 21.4s", "↑ pushed lua (1.2 MB)"]) {
      expect(frame).toContain(row);
    }
    expect(frame.indexOf("cached busybox")).toBeLessThan(frame.indexOf("built lua"));
    expect(frame.split("cached busybox")).toHaveLength(2);
  });

  it("shows the file a compiler works on, keeps both ends of other long lines, and says when a build went quiet", () => {
    let state = reduce(initialState(), { type: "building", layer: "musl", key: "k", logPath: "/l", jobs: 2, reason: { kind: "new", changes: [] } }, 0);
    state = reduce(state, { type: "log", layer: "musl", line: `gcc ${"-Wall ".repeat(100)}-c -o obj/src/exit/_Exit.lo src/exit/_Exit.c` }, 1);
    const compiling = render(view({ state, now: 1000 })).lastFrame() ?? "";
    expect(compiling).toMatch(/musl\s+1\.0s\s+gcc src\/exit\/_Exit\.c$/m);
    state = reduce(state, { type: "log", layer: "musl", line: `checking ${"whether the compiler works ".repeat(10)}... yes, at the end` }, 2);
    const row = (render(view({ state, now: 1000 })).lastFrame() ?? "").split("\n").find((l) => l.includes("musl"));
    expect(row!.length).toBeLessThanOrEqual(100);
    expect(row).toMatch(/checking .*….*at the end$/);
    // Quiet for a while: the row says for how long, instead of looking frozen.
    const quiet = render(view({ state, now: 12_002 })).lastFrame() ?? "";
    expect(quiet).toContain("(no output for 12.0s)");
  });

  it("shows sources being fetched, layers waiting for a slot, and what happens while nothing else moves", () => {
    const loading = render(view({ state: reduce(initialState(), { type: "started", jobs: 2 }, 0), now: 700 })).lastFrame() ?? "";
    expect(loading).toMatch(/^\S loading the definition… 0\.7s$/m);
    let state = reduceAll(initialState(), [{ type: "started", jobs: 1 }, queued("a"), queued("b"), queued("c")], 0);
    expect(render(view({ state, now: 1500 })).lastFrame()).toMatch(/^\S looking up 3 layers… 1\.5s$/m);
    state = reduce(state, { type: "source", source: "musl-src", phase: "download", bytesDone: 0, bytesTotal: 4_000_000 }, 1000);
    state = reduce(state, { type: "source", source: "musl-src", phase: "download", bytesDone: 1_000_000, bytesTotal: 4_000_000 }, 2000);
    state = reduce(state, { type: "source", source: "git-repo", phase: "clone", bytesDone: 300_000, bytesTotal: undefined }, 2000);
    state = reduce(state, { type: "building", layer: "a", key: "k", logPath: "/l", jobs: 1, reason: { kind: "new", changes: [] } }, 2000);
    state = reduce(state, { type: "waiting", layer: "b", for: "slot" }, 2000);
    state = reduce(state, { type: "waiting", layer: "c", for: "slot" }, 2000);
    const frame = render(view({ state, now: 2000 })).lastFrame() ?? "";
    expect(frame).toMatch(/^\S musl-src\s+1\.0s\s+downloading 1\.0\/4\.0 MB 25%\s+1\.0 MB\/s$/m);
    expect(frame).toMatch(/^\S git-repo\s+0\.0s\s+cloning 300\.0 kB$/m);
    expect(frame).toContain("· waiting for a build slot (1 at once): b, c");
    expect(frame).not.toContain("looking up");
    state = reduce(state, { type: "source", source: "musl-src", phase: "done", bytesDone: 9_000_000, bytesTotal: 9_000_000 }, 3000);
    const later = render(view({ state, now: 3000 })).lastFrame() ?? "";
    expect(later).not.toContain("musl-src");
    expect(render(view({ state, now: 3000, verbose: true })).lastFrame()).toContain("↓ fetched musl-src (1.0 MB in 2.0s)");
  });

  it("caps the live rows and counts the rest", () => {
    let state = initialState();
    for (let i = 0; i < 30; i++) {
      state = reduce(state, { type: "building", layer: `l${i}`, key: "k", logPath: "/l", jobs: 1, reason: { kind: "new", changes: [] } }, 0);
    }
    const frame = render(view({ state, now: 10, maxLiveRows: 5 })).lastFrame() ?? "";
    expect(frame.split("\n").filter((l) => / l\d+ /.test(l))).toHaveLength(5);
    expect(frame).toContain("+25 more running");
  });

  it("ends a successful build with the cache hits and misses and the outcome, with nothing live", () => {
    const frame = render(view({ state: stateAt(99_999), now: 5000 })).lastFrame() ?? "";
    expect(frame).toContain("cache: 3 hits, 3 misses (1 pulled from the remote, 2 built)");
    expect(frame.trimEnd().split("\n").slice(-2)).toEqual([
      "done: 8 layers (2 built, 1 pulled, 3 cached, 1 skipped) in 4.3s",
      "pulled 5.0 MB, pushed 1.2 MB; the cache saved about 40.0s of building",
    ]);
    expect(frame).not.toContain("░");
    expect(frame).not.toContain("skipped docs");
  });

  it("ends a failed build with the failure block: message, last 30 log lines, log path", () => {
    const app = render(view({ state: stateAt(3000, { fail: true }), now: 3000 }));
    app.rerender(view({ state: stateAt(99_999, { fail: true }), now: 5000 }));
    const lines = (app.lastFrame() ?? "").trimEnd().split("\n");
    expect(lines).toContain("✗ failed lua: build of lua failed: /bin/sh exited with status 2");
    const start = lines.indexOf("error: lua failed: build of lua failed: /bin/sh exited with status 2");
    expect(start).toBeGreaterThan(0);
    expect(lines.slice(start + 1, start + 33)).toEqual([
      "last 30 lines of the log of lua:",
      ...Array.from({ length: 30 }, (_, i) => `  | lua.c:${i + 3}: error line ${i + 3}`),
      "full log: /cache/logs/key-lua.log",
    ]);
    expect(lines.slice(-2)).toEqual(["failed: 8 layers (0 built, 1 pulled, 3 cached, 1 failed, 3 skipped) in 4.3s", "pulled 5.0 MB; the cache saved about 40.0s of building"]);
  });

  it("prints the failure when closed early, before the build finished", () => {
    const frame = render(view({ state: stateAt(4000, { fail: true }), now: 4000, final: true })).lastFrame() ?? "";
    expect(frame).toContain("error: lua failed");
    expect(frame).toContain("stopped: 5/8 layers finished in 4.0s");
  });

  it("uses expected build times for the bar and the ETA", () => {
    const expectedMs = { busybox: 1000, musl: 1000, gcc: 1000, zlib: 1000, lua: 20_000, app: 5000, base: 1000, docs: 1000 };
    const frame = render(view({ state: stateAt(3700, {}, expectedMs), now: 3700 })).lastFrame() ?? "";
    expect(frame).toMatch(/ETA 19\.0s/);
  });
});
