// Tests for what a manifest states about its blob: bytes and entries counted as the unpacker
// counts them (an opaque directory is two archive entries), and the free space it is checked
// against.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { applyOverlayMarks } from "../src/index";
import { freeSpace, unpackedSizeOf } from "../src/remote/unpacked-size";
import { tempDir } from "./helpers/trees";

describe("unpackedSizeOf", () => {
  it("counts file bytes and archive entries, opaque markers included", async () => {
    const root = tempDir();
    mkdirSync(join(root, "etc/opaque"), { recursive: true });
    writeFileSync(join(root, "etc/a"), "12345");
    writeFileSync(join(root, "etc/opaque/b"), "678");
    applyOverlayMarks(root, [{ op: "o", path: "etc/opaque" }, { op: "w", path: "gone" }]);
    // etc/, etc/a, etc/opaque/, its .wh..wh..opq marker, etc/opaque/b, the whiteout .wh.gone.
    expect(await unpackedSizeOf(root)).toEqual({ bytes: 8, entries: 6 });
    expect(await unpackedSizeOf(tempDir())).toEqual({ bytes: 0, entries: 0 });
  });

  it("reports free space on the store's filesystem", () => {
    const free = freeSpace(tempDir());
    expect(free).toBeGreaterThan(0);
    expect(Number.isSafeInteger(free)).toBe(true);
  });
});
