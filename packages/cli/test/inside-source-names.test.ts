// Tests for naming a source (inside/source-names.ts): the closest declared names for a typo.

import { describe, expect, it } from "vitest";
import { closest } from "../src/inside/source-names";

describe("closest", () => {
  it("suggests the nearest names, and none when nothing is near", () => {
    const names = ["musl-src", "busybox-src", "zlib-src", "xz-src"];
    expect(closest("musl-scr", names)).toEqual(["musl-src"]);
    expect(closest("MUSL-SRC", names)).toEqual(["musl-src"]);
    expect(closest("zlib", names)).toEqual(["zlib-src"]);
    expect(closest("xz-srd", names)).toEqual(["xz-src"]);
    expect(closest("completely-else", names)).toEqual([]);
    expect(closest("x", [])).toEqual([]);
  });
});
