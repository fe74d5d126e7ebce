// Tests "did you mean" (graph/src/define/closest.ts): edit distance with transpositions, case,
// prefixes, and no suggestion when nothing is close enough to be the same word.

import { describe, expect, it } from "vitest";
import { closestMatches, didYouMean, editDistance } from "../src/define/closest";

describe("editDistance", () => {
  it("counts inserts, deletes, substitutions and swaps of neighbours", () => {
    expect(editDistance("build", "build")).toBe(0);
    expect(editDistance("bild", "build")).toBe(1);
    expect(editDistance("aplets", "applets")).toBe(1);
    expect(editDistance("bulid", "build")).toBe(1);
    expect(editDistance("kitten", "sitting")).toBe(3);
    expect(editDistance("", "abc")).toBe(3);
  });
});

describe("closestMatches", () => {
  const commands = ["run", "shell", "build", "why", "exec", "ps", "kill", "cache", "export", "source", "log", "history"];

  it("finds what a typo meant, whatever its first letters", () => {
    expect(closestMatches("bild", commands)).toEqual(["build"]);
    expect(closestMatches("aplets", ["applets", "busybox", "musl"])).toEqual(["applets"]);
    expect(closestMatches("runDep", ["runDeps", "buildDeps", "deps", "name"])).toEqual(["runDeps"]);
    expect(closestMatches("Entrypoint", ["entrypoint", "env"])).toEqual(["entrypoint"]);
    expect(closestMatches("expotr", commands)).toEqual(["export"]);
  });

  it("takes a prefix of a longer name as close", () => {
    expect(closestMatches("hist", commands)).toEqual(["history"]);
  });

  it("suggests nothing when nothing is close", () => {
    expect(closestMatches("frobnicate", commands)).toEqual([]);
    expect(closestMatches("zz", ["ps", "run"])).toEqual([]);
  });

  it("lists ties, best first", () => {
    expect(closestMatches("cat", ["cut", "car", "dog"])).toEqual(["car", "cut"]);
  });
});

describe("didYouMean", () => {
  it("says it in a clause, or not at all", () => {
    expect(didYouMean("bild", ["build", "run"])).toBe(' (did you mean "build"?)');
    expect(didYouMean("cat", ["cut", "car"], (n) => n)).toBe(" (did you mean car or cut?)");
    expect(didYouMean("frobnicate", ["build"])).toBe("");
  });
});
