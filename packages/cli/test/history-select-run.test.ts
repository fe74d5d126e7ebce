// Tests picking a recorded run (cli/src/history/select-run.ts): the last, the Nth newest, an id's
// start, of one system; clear errors when there is none or the id is ambiguous; "how long ago".

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { RunFile, type RunHeader } from "../src/history/run-file";
import { ago, selectRun } from "../src/history/select-run";

const state = mkdtempSync(join(tmpdir(), "castle-select-"));
afterAll(() => rmSync(state, { recursive: true, force: true }));
const header = (id: string, system = "demo"): RunHeader => ({ version: 1, id, system, definition: "/d", command: "build", startedAt: 1, cores: 2, pid: 1 });

describe("selectRun", () => {
  it("says there is nothing yet", () => {
    expect(() => selectRun(state, {})).toThrow(expect.objectContaining({ code: "CASTLE_RUN_NOT_FOUND", message: "no runs are recorded yet" }));
  });

  it("picks the last, the Nth newest, or by the start of its id", () => {
    for (const id of ["0aa1", "0aa2", "0ab3"]) new RunFile(state, header(id)).append([]);
    new RunFile(state, header("0zz9", "other")).append([]);
    expect(selectRun(state, {}).header.id).toBe("0zz9");
    expect(selectRun(state, { system: "demo" }).header.id).toBe("0ab3");
    expect(selectRun(state, { system: "demo", run: "2" }).header.id).toBe("0aa2");
    expect(selectRun(state, { run: "0aa1" }).header.id).toBe("0aa1");
    expect(() => selectRun(state, { run: "0aa" })).toThrow(/run id "0aa" is ambiguous: 0aa2, 0aa1/);
    expect(() => selectRun(state, { system: "demo", run: "7" })).toThrow(/there is no run "7" of system demo: 3 are recorded/);
  });
});

describe("ago", () => {
  it("says how long ago, roughly", () => {
    expect(ago(0, 5_000)).toBe("5 s ago");
    expect(ago(0, 300_000)).toBe("5 min ago");
    expect(ago(0, 3 * 3_600_000)).toBe("3 h ago");
    expect(ago(0, 72 * 3_600_000)).toBe("3 days ago");
  });
});
