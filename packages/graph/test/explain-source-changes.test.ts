// Tests naming the files of a local source that changed since it was stored
// (graph/src/explain/source-changes.ts), and that a rebuild's reason carries them
// (describeChanges); an overridden source is compared as the directory that replaces it.

import { chmodSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { source } from "../src/define/index";
import { describeChanges } from "../src/explain/explain";
import { localSourceChanges } from "../src/explain/source-changes";
import type { KeyInputs } from "../src/hash/layer-key";
import { realizeSource } from "../src/sources/index";
import { sourceContext, tempStore, useTempDirs } from "./helpers/temp-dirs";

const temp = useTempDirs();

describe("localSourceChanges", () => {
  it("names the files changed, added and removed since the stored tree", async () => {
    const dir = temp("musl");
    mkdirSync(join(dir, "src/exit"), { recursive: true });
    writeFileSync(join(dir, "src/exit/_Exit.c"), "void _Exit(int ec) { }\n");
    writeFileSync(join(dir, "src/exit/exit.c"), "void exit(int ec) { }\n");
    writeFileSync(join(dir, "README"), "musl\n");
    writeFileSync(join(dir, "tool.sh"), "#!/bin/sh\n");
    symlinkSync("README", join(dir, "link"));
    const store = tempStore(temp);
    const src = source.local(dir, { name: "musl-src" });
    const before = `local:${await realizeSource(src, sourceContext(store))}`;
    writeFileSync(join(dir, "src/exit/_Exit.c"), "void _Exit(int ec) { write(2, \"RIP\", 3); }\n");
    writeFileSync(join(dir, "new.c"), "int x;\n");
    rmSync(join(dir, "README"));
    chmodSync(join(dir, "tool.sh"), 0o755);
    const now = `local:${await realizeSource(src, sourceContext(store))}`;
    const detail = localSourceChanges(store, new Map([["musl-src", src]]), new Map());
    expect(detail({ name: "musl-src", before, now })).toBe("changed src/exit/_Exit.c, tool.sh; added new.c; removed README");
    // Nothing to compare with: an id that is not local, or a tree no longer stored.
    expect(detail({ name: "musl-src", before: "http:abc", now })).toBeUndefined();
    expect(detail({ name: "musl-src", before: `local:${"0".repeat(64)}`, now })).toBeUndefined();
    expect(detail({ name: "other", before, now })).toBeUndefined();
  });

  it("compares an overridden source as the directory that replaces it, and puts the files in the reason", async () => {
    const original = temp("original");
    writeFileSync(join(original, "a.c"), "a\n");
    const override = temp("override");
    writeFileSync(join(override, "a.c"), "a\n");
    const store = tempStore(temp);
    const declared = source.http({ name: "lib-src", url: "https://example.invalid/lib-1.0.tar.gz", sha256: "0".repeat(64) });
    const overrides = new Map([["lib_src", override]]);
    const before = `local:${await realizeSource(declared, sourceContext(store, { overrides }))}`;
    writeFileSync(join(override, "a.c"), "A\n");
    const now = `local:${await realizeSource(declared, sourceContext(store, { overrides }))}`;
    const inputs = (id: string) => ({ schema: 1, kind: "build", mounts: [{ path: "/src", kind: "source", name: "lib-src", id }] }) as unknown as KeyInputs;
    const reason = describeChanges(inputs(before), inputs(now), localSourceChanges(store, new Map([["lib-src", declared]]), overrides));
    expect(reason.changes).toEqual([`source lib-src at /src: local:${before.slice(6, 18)} → local:${now.slice(6, 18)} (changed a.c)`]);
  });
});
