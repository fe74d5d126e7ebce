// Tests for what a system tells the Castle inside (inside/inside-info.ts): naming a path on the
// outermost host through the mounts, and the edits file read as overrides.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { editOverrides, hostPath, insideInfo, readEdits, writeEdits, type InsideInfo } from "../src/inside/inside-info";

const info: InsideInfo = {
  instance: "distro-123456",
  run: ["repo", "main"],
  edits: "/.castle/state/edits.json",
  editDir: "/root/src",
  hostPaths: { "/root/src": "/home/u/systems/distro/src", "/root/src/deeper": "/elsewhere", "/.castle/state": "/home/u/systems/distro/castle-store" },
};

describe("inside info", () => {
  it("reads CASTLE_INSIDE, and nothing outside a system", () => {
    expect(insideInfo({ CASTLE_INSIDE: JSON.stringify(info) })).toEqual(info);
    expect(insideInfo({})).toBeUndefined();
    expect(insideInfo({ CASTLE_INSIDE: "{not json" })).toBeUndefined();
  });

  it("names a path on the host through the longest matching mount", () => {
    expect(hostPath("/root/src/musl-src/src/exit", info)).toBe("/home/u/systems/distro/src/musl-src/src/exit");
    expect(hostPath("/root/src", info)).toBe("/home/u/systems/distro/src");
    expect(hostPath("/root/src/deeper/x", info)).toBe("/elsewhere/x");
    expect(hostPath("/root/srcx", info)).toBe("/root/srcx");
    expect(hostPath("/etc/passwd", undefined)).toBe("/etc/passwd");
  });

  it("turns the edits file into overrides for the sources a system declares", () => {
    const dir = mkdtempSync(join(tmpdir(), "castle-edits-"));
    const file = join(dir, "edits.json");
    expect(readEdits(file)).toEqual({ sources: {} });
    writeEdits(file, { sources: { "musl-src": "/root/src/musl-src", "zlib-src": "/root/src/zlib-src" } });
    const env = { CASTLE_INSIDE: JSON.stringify({ ...info, edits: file }) };
    expect(editOverrides(["musl-src", "busybox-src"], env)).toEqual(new Map([["musl_src", "/root/src/musl-src"]]));
    expect(editOverrides(["musl-src"], {})).toEqual(new Map());
  });
});
