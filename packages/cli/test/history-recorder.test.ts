// Tests the run recorder (cli/src/history/recorder.ts): nothing written for a run that did no
// work (or before it knows its system), everything held written once it does, log lines dropped,
// progress thinned to once a second per layer or source (phase changes and ends kept).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BuildEvent } from "@castle/graph";
import { afterAll, describe, expect, it } from "vitest";
import { createRecorder } from "../src/history/recorder";
import { listRuns, readRun } from "../src/history/run-file";
import { keyRecord, queued } from "./helpers/ui-scripted-build";

const roots: string[] = [];
afterAll(() => roots.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "castle-recorder-"));
  roots.push(dir);
  return dir;
}

describe("createRecorder", () => {
  it("writes nothing for a run that found everything cached", async () => {
    const state = stateDir();
    const recorder = createRecorder({ stateDir: state, command: "run" });
    recorder.identify({ system: "demo", definition: "/d" });
    recorder.onEvent(queued("a"));
    recorder.onEvent({ type: "cache-hit", layer: "a", key: "k", digest: "d" });
    recorder.onEvent({ type: "done", layer: "a", key: "k", record: keyRecord("a", 5, 5), origin: "local" });
    await recorder.close();
    expect(recorder.file).toBeUndefined();
    expect(listRuns(state)).toEqual([]);
  });

  it("writes what it held once there is work and a name, without log lines, with progress thinned", async () => {
    const state = stateDir();
    let now = 1000;
    const recorder = createRecorder({ stateDir: state, command: "build", startedAt: 1000, now: () => now });
    const source = (phase: "download" | "unpack" | "done", bytesDone: number): BuildEvent => ({ type: "source", source: "s", phase, bytesDone, bytesTotal: 100 });
    recorder.onEvent(queued("a"));
    recorder.onEvent(source("download", 0));
    for (let i = 1; i <= 30; i++) {
      now = 1000 + i * 100;
      recorder.onEvent(source("download", i));
    }
    expect(recorder.file).toBeUndefined(); // no name yet
    recorder.identify({ system: "demo", definition: "/d" });
    expect(recorder.file).toBeDefined();
    recorder.onEvent(source("unpack", 0));
    recorder.onEvent(source("done", 100));
    recorder.onEvent({ type: "building", layer: "a", key: "k", reason: { kind: "new", changes: [] }, logPath: "/l", jobs: 1 });
    for (let i = 0; i < 100; i++) recorder.onEvent({ type: "log", layer: "a", line: `line ${i}` });
    await recorder.close();
    const run = readRun(listRuns(state, "demo")[0]!.file);
    expect(run.header).toMatchObject({ system: "demo", definition: "/d", command: "build", startedAt: 1000, pid: process.pid });
    const events = run.lines.flatMap((line) => ("event" in line ? [line.event] : []));
    expect(events.some((e) => e.type === "log")).toBe(false);
    const downloads = events.flatMap((e) => (e.type === "source" && e.phase === "download" ? [e.bytesDone] : []));
    expect(downloads).toEqual([0, 10, 20, 30]); // once a second over 3 s
    expect(events.map((e) => e.type)).toEqual(["queued", "source", "source", "source", "source", "source", "source", "building"]);
  });

  it("records any run when asked to (for --timings)", async () => {
    const state = stateDir();
    const recorder = createRecorder({ stateDir: state, command: "build", always: true });
    recorder.identify({ system: "cached", definition: "/d" });
    recorder.onEvent({ type: "finished", ok: true, stats: { layers: 0, built: 0, pulled: 0, cached: 0, failed: 0, pushedBytes: 0, pulledBytes: 0, wallMs: 1, savedMs: 0 } });
    await recorder.close();
    expect(listRuns(state, "cached")).toHaveLength(1);
  });
});
