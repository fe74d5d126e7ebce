// Tests the history on disk (cli/src/history/run-file.ts): a run's file made on its first append,
// read back (a half-written last line left out), listed newest first per system or all, pruned
// to the newest runs; ids sort by time.

import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { RunFile, listRuns, newRunId, pruneRuns, readRun, type RunHeader } from "../src/history/run-file";

const state = mkdtempSync(join(tmpdir(), "castle-history-"));
afterAll(() => rmSync(state, { recursive: true, force: true }));

const header = (id: string, system = "demo"): RunHeader => ({ version: 1, id, system, definition: "/d", command: "build", startedAt: 1, cores: 2, pid: 1 });

describe("run files", () => {
  it("ids sort by time", () => {
    const ids = [1_000, 2_000_000_000_000, 1_800_000_000_000].map((t) => newRunId(t, 4242));
    expect([...ids].sort()).toEqual([ids[0], ids[2], ids[1]]);
  });

  it("writes the header with the first lines, reads them back, and skips a line cut short", () => {
    const run = new RunFile(state, header("0a"));
    run.append([{ t: 1, event: { type: "started", jobs: 2 } }]);
    run.append([{ t: 5, cpu: 1.5 }]);
    appendFileSync(run.file, '{"t": 9, "ev');
    const read = readRun(run.file);
    expect(read.header).toEqual(header("0a"));
    expect(read.lines).toEqual([{ t: 1, event: { type: "started", jobs: 2 } }, { t: 5, cpu: 1.5 }]);
  });

  it("lists runs newest first, of one system or all, and keeps the newest when pruning", () => {
    for (const id of ["0b", "0c", "0d"]) new RunFile(state, header(id)).append([]);
    new RunFile(state, header("0e", "other")).append([]);
    expect(listRuns(state, "demo").map((r) => r.header.id)).toEqual(["0d", "0c", "0b", "0a"]);
    expect(listRuns(state).map((r) => r.header.id)).toEqual(["0e", "0d", "0c", "0b", "0a"]);
    pruneRuns(state, "demo", 2);
    expect(listRuns(state, "demo").map((r) => r.header.id)).toEqual(["0d", "0c"]);
    expect(listRuns(state, "nothing")).toEqual([]);
  });
});
