// Tests that validating a graph never formats a definition site: formatting one maps the stack
// through the definition's source map, which costs a cached `castle run` milliseconds; only an
// error message needs it.

import { describe, expect, it } from "vitest";
import { buildGraph, layer, source, system, type Layer, type Source, type System } from "../src/index";
import { effectiveSource } from "../src/sources/overrides";

/** A copy of a definition value whose `definedAt` counts how often it is read. */
function counted<T extends Layer | Source | System>(value: T, reads: { count: number }): T {
  const descriptors = Object.getOwnPropertyDescriptors(value);
  return Object.freeze(Object.defineProperties({}, {
    ...descriptors,
    definedAt: { get: () => (reads.count++, value.definedAt), enumerable: true },
  })) as T;
}

describe("definition sites", () => {
  it("are not read while a valid graph is built, nor by an override", () => {
    const reads = { count: 0 };
    const src = counted(source.inline({ "a.txt": "a" }, { name: "files" }), reads);
    const base = counted(layer({ name: "base", script: "true", mounts: { "/src": src } }), reads);
    const app = counted(layer({ name: "app", runDeps: [base], script: "true" }), reads);
    const graph = buildGraph(counted(system({ name: "demo", layers: [app] }), reads));
    expect(graph.order.map((node) => node.name)).toEqual(["base", "app"]);
    const local = effectiveSource(src, new Map([["files", "/tmp"]])).source;
    expect(reads.count).toBe(0);
    expect(local.definedAt).toMatch(/definition-sites\.test\.ts:\d+:\d+$/);
    expect(reads.count).toBe(1);
  });

  it("is read for the error that names it", () => {
    const reads = { count: 0 };
    const wide = Array.from({ length: 501 }, (_, i) => layer({ name: `side${i}`, script: "true" }));
    expect(() => buildGraph(counted(system({ name: "wide", layers: wide }), reads))).toThrow(/definition-sites\.test\.ts:\d+:\d+: system wide stacks more than 500 layers/);
    expect(reads.count).toBe(1);
  });
});
