// Tests the progress UI's pure reducer (cli/src/ui/view-state.ts): phases, counters, transcript,
// warnings, failures and purity, plus its cost with many layers and log lines.

import { describe, expect, it } from "vitest";
import type { BuildEvent } from "@castle/graph";
import { initialState, reduce, reduceAll, type LayerPhase, type ViewState } from "../src/ui/view-state";
import { keyRecord, queued, scriptedBuild } from "./helpers/ui-scripted-build";

function run(events: { at: number; event: BuildEvent }[], state: ViewState = initialState()): ViewState {
  return events.reduce((s, step) => reduce(s, step.event, step.at), state);
}

function phaseOf(state: ViewState, name: string): LayerPhase | undefined {
  const position = state.positionOf.get(name);
  return position === undefined ? undefined : state.layers[position]?.phase;
}


describe("reduce", () => {
  it("keeps layers in queued order, waiting", () => {
    const state = reduceAll(initialState(), ["b", "a", "c"].map((n) => queued(n)), 5);
    expect(state.layers.map((l) => l.name)).toEqual(["b", "a", "c"]);
    expect(state.layers.every((l) => l.phase.kind === "waiting")).toBe(true);
    expect(state.counters).toMatchObject({ total: 3, finished: 0 });
    expect(state.startedAt).toBe(5);
  });

  it("does not mutate the state it is given", () => {
    const before = reduceAll(initialState(), ["a", "b"].map((n) => queued(n)), 0);
    const frozen = JSON.stringify({ ...before, positionOf: [...before.positionOf] });
    reduce(before, { type: "building", layer: "a", key: "k", logPath: "/l", jobs: 2, reason: { kind: "new", changes: [] } }, 10);
    reduce(before, { type: "failed", layer: "b", message: "x", logTail: [] }, 10);
    expect(JSON.stringify({ ...before, positionOf: [...before.positionOf] })).toBe(frozen);
  });

  it("follows a cache hit to done as a cached layer", () => {
    let state = reduce(initialState(), queued("musl"), 0);
    state = reduce(state, { type: "cache-hit", layer: "musl", key: "k", digest: "d" }, 1);
    expect(phaseOf(state, "musl")).toEqual({ kind: "cached" });
    state = reduce(state, { type: "cache-hit", layer: "musl", key: "k", digest: "d" }, 1);
    state = reduce(state, { type: "done", layer: "musl", key: "k", record: keyRecord("musl", 5000, 10), origin: "local" }, 2);
    expect(phaseOf(state, "musl")).toEqual({ kind: "done", origin: "local", cacheHit: true, durationMs: 0, recordedMs: 5000, bytes: 10 });
    expect(state.counters).toMatchObject({ cached: 1, finished: 1, built: 0 });
  });

  it("tracks pull bytes and the rate since the pull started", () => {
    let state = reduce(initialState(), queued("zlib"), 0);
    const pulling = (bytesDone: number): BuildEvent => ({ type: "pulling", layer: "zlib", key: "k", bytesDone, bytesTotal: 8_000_000 });
    state = reduce(state, pulling(0), 1000);
    expect(state.counters.pulling).toBe(1);
    state = reduce(state, pulling(2_000_000), 2000);
    state = reduce(state, pulling(6_000_000), 3000);
    expect(phaseOf(state, "zlib")).toMatchObject({ kind: "pulling", bytesDone: 6_000_000, bytesTotal: 8_000_000, bytesPerSecond: 3_000_000 });
    expect(state.counters.pulling).toBe(1);
    state = reduce(state, { type: "done", layer: "zlib", key: "k", record: keyRecord("zlib", 0, 99, "pulled"), origin: "pulled" }, 3500);
    expect(phaseOf(state, "zlib")).toMatchObject({ kind: "done", origin: "pulled", durationMs: 2500, bytes: 8_000_000 });
    expect(state.counters).toMatchObject({ pulling: 0, pulled: 1, finished: 1 });
  });

  it("keeps a building layer's start, reason and last log line; duration from the record", () => {
    let state = reduce(initialState(), queued("lua"), 0);
    const reason = { kind: "changed" as const, changes: ["dependency musl: output 1a2b… → 9f8e…"] };
    state = reduce(state, { type: "building", layer: "lua", key: "k", reason, logPath: "/logs/lua.log", jobs: 4 }, 100);
    state = reduce(state, { type: "log", layer: "lua", line: "one" }, 200);
    state = reduce(state, { type: "log", layer: "lua", line: "two" }, 300);
    expect(phaseOf(state, "lua")).toEqual({ kind: "building", startedAt: 100, reason, logPath: "/logs/lua.log", jobs: 4, lastLogLine: "two", lastLogAt: 300 });
    // A line that says nothing ("#", blank) keeps the last one that did, but counts as output.
    state = reduce(state, { type: "log", layer: "lua", line: "#" }, 400);
    state = reduce(state, { type: "log", layer: "lua", line: "" }, 500);
    expect(phaseOf(state, "lua")).toMatchObject({ lastLogLine: "two", lastLogAt: 500 });
    expect(state.counters.building).toBe(1);
    state = reduce(state, { type: "done", layer: "lua", key: "k", record: keyRecord("lua", 21_400, 5), origin: "built" }, 900);
    expect(phaseOf(state, "lua")).toMatchObject({ kind: "done", origin: "built", durationMs: 21_400, cacheHit: false });
    expect(state.counters).toMatchObject({ building: 0, built: 1, finished: 1 });
  });

  it("times a build whose record has no build time from its building event, and finishes merge layers", () => {
    let state = reduce(initialState(), { type: "building", layer: "x", key: "k", reason: { kind: "forced", changes: [] }, logPath: "/l", jobs: 1 }, 1000);
    state = reduce(state, { type: "done", layer: "x", key: "k", record: keyRecord("x", 0, 7), origin: "built" }, 4500);
    expect(phaseOf(state, "x")).toMatchObject({ kind: "done", durationMs: 3500, bytes: 7 });
    state = reduce(state, { type: "merged", layer: "merge" }, 4600);
    expect(phaseOf(state, "merge")).toMatchObject({ kind: "done", origin: "merged", cacheHit: false });
    expect(state.counters.cached).toBe(0);
  });

  it("records what a queued event says about a layer: kind, what it waits for, its expected time", () => {
    let state = reduce(initialState(), { type: "started", jobs: 3 }, 0);
    state = reduce(state, queued("a", { kind: "import", expectedMs: 1200 }), 0);
    state = reduce(state, queued("b", { waitsFor: ["a"] }), 0);
    expect(state.jobs).toBe(3);
    expect(state.layers.map((l) => [l.name, l.kind, l.waitsFor, l.expectedMs])).toEqual([["a", "import", [], 1200], ["b", "build", ["a"], undefined]]);
  });

  it("follows a layer waiting for a build slot until it builds", () => {
    let state = reduce(initialState(), queued("a"), 0);
    state = reduce(state, { type: "waiting", layer: "a", for: "slot" }, 10);
    expect(phaseOf(state, "a")).toEqual({ kind: "ready", since: 10 });
    expect(state.counters.ready).toBe(1);
    state = reduce(state, { type: "building", layer: "a", key: "k", reason: { kind: "new", changes: [] }, logPath: "/l", jobs: 1 }, 20);
    expect(state.counters).toMatchObject({ ready: 0, building: 1 });
  });

  it("follows each source through its phases, with its rate and what came over the network", () => {
    const source = (phase: "download" | "unpack" | "store" | "done", bytesDone: number, bytesTotal?: number): BuildEvent => ({ type: "source", source: "musl-src", phase, bytesDone, bytesTotal });
    let state = reduce(initialState(), source("download", 0, 4_000_000), 1000);
    expect(state.counters).toMatchObject({ fetching: 1, fetched: 0 });
    state = reduce(state, source("download", 2_000_000, 4_000_000), 2000);
    expect(state.sources[0]).toMatchObject({ phase: "download", bytesDone: 2_000_000, bytesPerSecond: 2_000_000, fetchedBytes: 2_000_000 });
    state = reduce(state, source("download", 4_000_000, 4_000_000), 3000);
    state = reduce(state, source("unpack", 0, 4_000_000), 3000);
    expect(state.sources[0]).toMatchObject({ phase: "unpack", bytesPerSecond: 0, fetchedBytes: 4_000_000, phaseStartedAt: 3000 });
    state = reduce(state, source("store", 0), 3500);
    state = reduce(state, source("done", 9_000_000, 9_000_000), 3600);
    expect(state.sources[0]).toMatchObject({ phase: "done", finishedAt: 3600, storedBytes: 9_000_000, startedAt: 1000 });
    expect(state.counters).toMatchObject({ fetching: 0, fetched: 1, fetchedBytes: 4_000_000 });
    expect(state.transcript).toEqual([{ kind: "fetched", source: state.sources[0] }]);
    // Nothing changes a source once it is done.
    expect(reduce(state, source("download", 1, 2), 4000)).toBe(state);
  });

  it("ignores log lines of layers that are not building", () => {
    const state = reduce(initialState(), queued("a"), 0);
    expect(reduce(state, { type: "log", layer: "a", line: "x" }, 1)).toBe(state);
  });

  it("never changes a finished layer again and counts it once", () => {
    let state = reduce(initialState(), queued("a"), 0);
    state = reduce(state, { type: "done", layer: "a", key: "k", record: keyRecord("a", 1, 1), origin: "local" }, 1);
    const finished = state;
    state = reduce(state, { type: "done", layer: "a", key: "k", record: keyRecord("a", 1, 1), origin: "local" }, 2);
    state = reduce(state, { type: "skipped", layer: "a", because: "x" }, 2);
    state = reduce(state, { type: "failed", layer: "a", message: "m", logTail: [] }, 2);
    expect(state).toBe(finished);
    expect(state.counters.finished).toBe(1);
    expect(state.failures).toEqual([]);
  });

  it("adds layers it hears of without a queued event", () => {
    const state = reduce(initialState(), { type: "skipped", layer: "ghost", because: "b" }, 0);
    expect(state.counters).toMatchObject({ total: 1, finished: 1, skipped: 1 });
  });

  it("keeps a failure with the log lines its event carried and the log path", () => {
    let state = reduce(initialState(), queued("lua"), 0);
    const logTail = Array.from({ length: 30 }, (_, i) => `line ${i}`);
    state = reduce(state, { type: "failed", layer: "lua", message: "it broke", code: "CASTLE_BUILD_FAILED", logPath: "/l", logTail }, 5);
    expect(state.failures).toEqual([
      { layer: "lua", message: "it broke", code: "CASTLE_BUILD_FAILED", logPath: "/l", logTail },
    ]);
    expect(phaseOf(state, "lua")).toEqual({ kind: "failed", message: "it broke", code: "CASTLE_BUILD_FAILED", stopped: false });
    expect(state.counters).toMatchObject({ failed: 1, finished: 1 });
  });

  it("after an interruption, a killed build is stopped, not failed: no failure block", () => {
    let state = reduceAll(initialState(), [queued("a"), queued("b")], 0);
    state = reduce(state, { type: "building", layer: "a", key: "k", reason: { kind: "new", changes: [] }, logPath: "/l", jobs: 1 }, 1);
    state = reduce(state, { type: "cancelled", signal: "SIGINT" }, 2);
    state = reduce(state, { type: "cancelled", signal: "SIGINT" }, 2);
    state = reduce(state, { type: "failed", layer: "a", message: "the sandbox was aborted and killed", logTail: ["x"], logPath: "/l" }, 3);
    expect(state.interrupted).toEqual({ signal: "SIGINT" });
    expect(phaseOf(state, "a")).toMatchObject({ kind: "failed", stopped: true });
    expect(state.failures).toEqual([]);
    expect(state.transcript.map((e) => e.kind)).toEqual(["building", "interrupted", "finished"]);
  });

  it("after an interruption, a layer behind a stopped one was skipped by the interruption, not by a failure", () => {
    let state = reduceAll(initialState(), [queued("base"), queued("app")], 0);
    state = reduce(state, { type: "cancelled", signal: "SIGTERM" }, 1);
    state = reduce(state, { type: "skipped", layer: "base", because: "the build was stopped" }, 2);
    state = reduce(state, { type: "skipped", layer: "app", because: "base failed" }, 2);
    expect(phaseOf(state, "app")).toEqual({ kind: "skipped", because: "the build was interrupted" });
    expect(phaseOf(state, "base")).toEqual({ kind: "skipped", because: "the build was interrupted" });
  });

  it("writes warnings with their layer once, and pushes, into the transcript", () => {
    let state = reduce(initialState(), queued("zlib"), 0);
    state = reduce(state, { type: "warning", layer: "zlib", message: "remote unreachable" }, 1);
    state = reduce(state, { type: "warning", layer: "zlib", message: "export of zlib failed" }, 1);
    state = reduce(state, { type: "warning", message: "no remote" }, 1);
    state = reduce(state, { type: "pushed", layer: "zlib", key: "k", uploadedBytes: 300 }, 2);
    expect(state.warnings).toEqual(["zlib: remote unreachable", "export of zlib failed", "no remote"]);
    expect(state.transcript.map((e) => e.kind)).toEqual(["warning", "warning", "warning", "pushed"]);
    expect(state.layers[0]?.pushedBytes).toBe(300);
  });

  it("appends finished layers to the transcript in the order they finished, with their position", () => {
    const state = run(scriptedBuild());
    const finished = state.transcript.flatMap((e) => (e.kind === "finished" ? [`${e.position} ${e.layer.name}`] : []));
    expect(finished).toEqual(["1 busybox", "2 musl", "3 gcc", "4 zlib", "5 lua", "6 app", "7 base", "8 docs"]);
  });

  it("ends with the final stats and ignores events after them", () => {
    const state = run(scriptedBuild({ fail: true }));
    expect(state.result).toMatchObject({ ok: false, stats: { layers: 8, failed: 1 } });
    expect(state.counters).toEqual({
      total: 8, finished: 8, cached: 3, pulled: 1, built: 0, failed: 1, skipped: 3, building: 0, pulling: 0, ready: 0, fetching: 0, fetched: 0, fetchedBytes: 0,
    });
    expect(reduce(state, queued("late"), 99_999)).toBe(state);
  });

  it("records the most builds seen running at once", () => {
    const state = run(scriptedBuild());
    expect(state.peakBuilding).toBe(2);
  });

  it("folds 100,000 log lines over 500 layers quickly", () => {
    const names = Array.from({ length: 500 }, (_, i) => `layer-${i}`);
    let state = reduceAll(initialState(), names.map((n) => queued(n)), 0);
    for (const layer of names.slice(0, 100)) {
      state = reduce(state, { type: "building", layer, key: "k", reason: { kind: "new", changes: [] }, logPath: "/l", jobs: 1 }, 1);
    }
    const started = performance.now();
    for (let i = 0; i < 100_000; i++) state = reduce(state, { type: "log", layer: `layer-${i % 100}`, line: `line ${i}` }, 2 + i);
    const elapsed = performance.now() - started;
    expect(phaseOf(state, "layer-99")).toMatchObject({ lastLogLine: "line 99999" });
    expect(elapsed).toBeLessThan(2000);
  });
});
