// Tests for which invocations the fast path answers and where their entries live (the native
// launcher computes the same: launcher/main.c). FNV-1a 64 against its published test vectors;
// the entry names of a few keys as literal golden values, since the launcher must agree.

import { describe, expect, it } from "vitest";
import { entryName, fastPathKey, fnv1a64 } from "../src/fastpath/entry-key";

describe("fastPathKey", () => {
  it("answers `castle run <dir>` and `castle run <dir> -- command...` only", () => {
    expect(fastPathKey(["run", "def"], "/work", false)).toEqual({ dir: "/work/def", arg: "def", tty: false, command: [] });
    expect(fastPathKey(["run", "./a/../def/", "--", "/bin/sh", "-c", "x"], "/work", true)).toEqual({
      dir: "/work/def", arg: "./a/../def/", tty: true, command: ["/bin/sh", "-c", "x"],
    });
    expect(fastPathKey(["run", "/abs"], "/work", false)?.dir).toBe("/abs");
    for (const argv of [
      ["shell", "def"], ["build", "def"], ["run"], ["run", ""], ["run", "--fresh", "def"], ["run", "def", "--ephemeral"],
      ["run", "def", "main"], ["run", "def", "--"], ["run", "https://example.org/x.git"], ["run", "file:///srv/repo"],
    ]) {
      expect(fastPathKey(argv, "/work", false), argv.join(" ")).toBeUndefined();
    }
  });
});

describe("entryName", () => {
  it("hashes with FNV-1a 64 (its published vectors)", () => {
    expect(fnv1a64("")).toBe("cbf29ce484222325");
    expect(fnv1a64("a")).toBe("af63dc4c8601ec8c");
    expect(fnv1a64("foobar")).toBe("85944171f73967e8");
  });

  it("names an entry by its directory, then by the whole key (golden: the launcher computes these)", () => {
    const key = { dir: "/work/def", arg: "/work/def", tty: false, command: ["/bin/true"] };
    expect(entryName({ ...key, command: [] })).toBe(`${fnv1a64("/work/def")}-${fnv1a64("/work/def\u0000/work/def\u00000\u0000")}`);
    expect(entryName(key)).toBe("9a53ca2914a2479b-f5734e24650111ec");
    expect(entryName({ ...key, tty: true }).slice(0, 16)).toBe("9a53ca2914a2479b");
    expect(entryName({ ...key, tty: true })).not.toBe(entryName(key));
    expect(entryName({ ...key, arg: "def" })).not.toBe(entryName(key));
  });
});
