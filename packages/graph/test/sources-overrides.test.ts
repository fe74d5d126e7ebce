// Tests for overrides: CASTLE_OVERRIDE_<name> and CLI pairs replacing a source by a local dir.
// Category: graph (see test/README.md).

import { readdirSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { source } from "../src/define/index";
import { normaliseSourceName, parseOverrides, realizeSource, sourceIdentity } from "../src/sources/index";
import { writeProject } from "./helpers/project";
import { sourceContext, tempStore, useTempDirs } from "./helpers/temp-dirs";

const temp = useTempDirs();

describe("overrides", () => {
  it("normalise names and read env vars and CLI pairs", () => {
    const a = temp("ovr");
    const b = temp("ovr");
    expect(normaliseSourceName("Musl-Src")).toBe("musl_src");
    const map = parseOverrides({ CASTLE_OVERRIDE_MUSL_SRC: a, CASTLE_OVERRIDE_EMPTY: "", OTHER: "x" }, { "busy-box": relative(process.cwd(), b) });
    expect([...map.entries()].sort()).toEqual([["busy_box", b], ["musl_src", a]].sort());
  });

  it("reject a missing override dir, naming the variable and the path", () => {
    const missing = join(temp("ovr"), "absent");
    const env = () => parseOverrides({ CASTLE_OVERRIDE_musl: missing });
    expect(env).toThrow(expect.objectContaining({ code: "CASTLE_OVERRIDE_MISSING" }));
    expect(env).toThrow(/CASTLE_OVERRIDE_musl.*absent/);
    const file = join(temp("ovr"), "file");
    writeFileSync(file, "");
    expect(() => parseOverrides({}, { musl: file })).toThrow(/--override musl=.*not a directory/);
  });

  it("replace a source by a local dir, changing its identity and its tree", async () => {
    const dir = temp("ovr");
    writeProject(dir);
    const store = tempStore(temp);
    const src = source.http({ name: "Musl-Src", url: "http://127.0.0.1:1/musl-1.2.3.tar.gz", sha256: "a".repeat(64) });
    const plain = await sourceIdentity(src, sourceContext(store));
    const overrides = parseOverrides({ CASTLE_OVERRIDE_MUSL_SRC: dir });
    const ctx = sourceContext(store, { overrides });
    const over = await sourceIdentity(src, ctx);
    expect(over.id).not.toBe(plain.id);
    expect(over).toEqual({ name: "Musl-Src", id: over.id, overriddenBy: dir });
    const digest = await realizeSource(src, ctx);
    expect(over.id).toBe(`local:${digest}`);
    expect(readdirSync(store.treePath(digest))).not.toContain(".git");
    expect(readdirSync(store.treePath(digest))).toContain("run.sh");
  });
});
