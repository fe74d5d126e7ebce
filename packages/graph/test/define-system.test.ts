// Tests for system() (define/system.ts): its defaults and the options Castle inside a system uses.

import { describe, expect, it } from "vitest";
import { layer, source, system } from "../src/index";

const base = layer.import({ name: "base", from: source.inline({ "etc/motd": "hi\n" }, { name: "base-files" }) });

describe("system()", () => {
  it("has Castle inside by default and edits nothing", () => {
    const s = system({ name: "plain", layers: [base] });
    expect(s.castle).toBe(true);
    expect(s.edit).toEqual([]);
    expect(s.entrypoint).toEqual(["/bin/sh"]);
  });

  it("takes castle: false and the sources to edit", () => {
    const s = system({ name: "distro", layers: [base], castle: false, edit: ["musl-src"] });
    expect(s.castle).toBe(false);
    expect(s.edit).toEqual(["musl-src"]);
  });

  it("refuses bad values with the definition's site", () => {
    expect(() => system({ name: "x", layers: [base], castle: "yes" as unknown as boolean })).toThrow(/system x: castle must be true or false/);
    expect(() => system({ name: "x", layers: [base], edit: "musl-src" as unknown as string[] })).toThrow(/system x: edit must be an array of strings/);
  });
});
