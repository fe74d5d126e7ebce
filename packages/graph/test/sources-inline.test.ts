// Tests for inline sources: files and modes written into the store, a stable identity.
// Category: graph (see test/README.md).

import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { source } from "../src/define/index";
import { realizeSource, sourceIdentity } from "../src/sources/index";
import { sourceContext, tempStore, useTempDirs } from "./helpers/temp-dirs";

const temp = useTempDirs();

describe("inline sources", () => {
  it("write contents and modes, and have an identity that is stable and covers modes", async () => {
    const store = tempStore(temp);
    const files = { "etc/hostname": "castle\n", "bin/hello": { content: "#!/bin/sh\necho hi\n", mode: 0o755 } };
    const src = source.inline(files);
    const id = await sourceIdentity(src, sourceContext(store));
    const reordered = source.inline({ "bin/hello": files["bin/hello"], "etc/hostname": "castle\n" });
    expect((await sourceIdentity(reordered, sourceContext(tempStore(temp)))).id).toBe(id.id);
    expect(id.id).toMatch(/^inline:[0-9a-f]{64}$/);
    const execOff = source.inline({ ...files, "bin/hello": { content: files["bin/hello"].content, mode: 0o644 } });
    expect((await sourceIdentity(execOff, sourceContext(store))).id).not.toBe(id.id);
    const tree = store.treePath(await realizeSource(src, sourceContext(store)));
    expect(readFileSync(join(tree, "etc/hostname"), "utf8")).toBe("castle\n");
    expect(statSync(join(tree, "bin/hello")).mode & 0o777).toBe(0o755);
    expect(statSync(join(tree, "etc/hostname")).mode & 0o777).toBe(0o644);
    expect(statSync(join(tree, "etc")).mode & 0o777).toBe(0o755);
  });
});
