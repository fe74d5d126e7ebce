// Tests for entry-name checks: what leaves the root is UNSAFE, what is not canonical is CORRUPT,
// and OCI whiteout names are read correctly.

import { describe, expect, it } from "vitest";
import { checkEntryPath, overlayMeaning, parentOf } from "../src/archive/safe-path";

describe("checkEntryPath", () => {
  it("accepts canonical relative names and drops a directory's slash", () => {
    expect(checkEntryPath("usr/bin/")).toBe("usr/bin");
    expect(checkEntryPath("a")).toBe("a");
    expect(checkEntryPath("..a/b..")).toBe("..a/b..");
  });

  it("refuses escapes as UNSAFE and odd names as CORRUPT", () => {
    for (const name of ["../x", "a/../../x", "/etc/passwd", "a/..", `${"x".repeat(256)}`, "a/".repeat(2100)]) {
      expect(() => checkEntryPath(name), name).toThrow(expect.objectContaining({ code: "CASTLE_ARCHIVE_UNSAFE" }));
    }
    for (const name of ["", "/", "./a", "a//b", "a/./b", "a\0b"]) {
      expect(() => checkEntryPath(name), JSON.stringify(name)).toThrow(expect.objectContaining({ code: expect.stringMatching(/CASTLE_ARCHIVE_(CORRUPT|UNSAFE)/) }));
    }
  });
});

describe("overlayMeaning", () => {
  it("reads whiteouts and opaque markers", () => {
    expect(overlayMeaning("etc/passwd")).toEqual({ kind: "plain" });
    expect(overlayMeaning("etc/.wh.passwd")).toEqual({ kind: "whiteout", target: "etc/passwd" });
    expect(overlayMeaning(".wh.top")).toEqual({ kind: "whiteout", target: "top" });
    expect(overlayMeaning("etc/.wh..wh..opq")).toEqual({ kind: "opaque", dir: "etc" });
    for (const bad of ["a/.wh.", "a/.wh..", "a/.wh...", "a/.wh..wh.x"]) {
      expect(() => overlayMeaning(bad), bad).toThrow(expect.objectContaining({ code: "CASTLE_ARCHIVE_CORRUPT" }));
    }
    expect(parentOf("a/b/c")).toBe("a/b");
    expect(parentOf("a")).toBe("");
  });
});
