// Tests for tar headers: what Castle's packer (castle-treeutil pack) writes decodes back — short
// entries in one block, a pax header for long names and links — checksums and magic are enforced,
// and pax records are parsed strictly.

import { spawnSync } from "node:child_process";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { treeutilPath } from "../src/index";
import { BLOCK, HeaderError, decodeHeader, decodePax, padding, roundUp } from "../src/archive/tar-header";
import { tempDir } from "./helpers/trees";

/** The uncompressed tar castle-treeutil pack writes for root. */
function packed(root: string): Buffer {
  const result = spawnSync(treeutilPath(), ["pack", root], { maxBuffer: 1 << 26 });
  expect(result.status, result.stderr.toString()).toBe(0);
  return result.stdout;
}

describe("decodeHeader", () => {
  it("decodes the packer's short entries, one block each", () => {
    const root = tempDir();
    mkdirSync(join(root, "usr/bin"), { recursive: true, mode: 0o755 });
    writeFileSync(join(root, "usr/bin/s"), "x".repeat(12345), { mode: 0o755 });
    symlinkSync("usr/bin", join(root, "bin"));
    const tar = packed(root);
    const headers = [];
    for (let at = 0; !tar.subarray(at, at + BLOCK).every((b) => b === 0); ) {
      const header = decodeHeader(tar, at);
      headers.push(header);
      at += BLOCK + (header.type === "file" ? header.size + padding(header.size) : 0);
    }
    expect(headers).toMatchObject([
      { name: "bin", type: "symlink", linkname: "usr/bin", mode: 0o777 },
      { name: "usr/", type: "dir", mode: 0o755 },
      { name: "usr/bin/", type: "dir", mode: 0o755 },
      { name: "usr/bin/s", type: "file", size: 12345, mode: 0o755 },
    ]);
  });

  it("decodes the pax header the packer writes for long names and links", () => {
    const root = tempDir();
    const name = `${"d".repeat(120)}é${"f".repeat(80)}`;
    const link = "l".repeat(300);
    symlinkSync(link, join(root, name));
    const tar = packed(root);
    const pax = decodeHeader(tar);
    expect(pax.type).toBe("pax");
    const records = decodePax(tar.subarray(BLOCK, BLOCK + pax.size));
    expect(records.get("path")).toBe(name);
    expect(records.get("linkpath")).toBe(link);
    expect(decodeHeader(tar, BLOCK + roundUp(pax.size))).toMatchObject({ type: "symlink" });
  });

  it("refuses a bad checksum and a foreign magic", () => {
    const root = tempDir();
    writeFileSync(join(root, "a"), "1");
    const block = packed(root).subarray(0, BLOCK);
    expect(decodeHeader(block)).toMatchObject({ name: "a", size: 1 });
    const flipped = Buffer.from(block);
    flipped[0] = 0x62;
    expect(() => decodeHeader(flipped)).toThrow(HeaderError);
    const noMagic = Buffer.from(block);
    noMagic.write("xxxxx", 257, "latin1");
    expect(() => decodeHeader(noMagic)).toThrow(HeaderError);
  });
});

describe("decodePax", () => {
  it("parses pax records strictly and pads to blocks past 2 GiB", () => {
    expect(decodePax(Buffer.from("11 path=ab\n")).get("path")).toBe("ab");
    expect(() => decodePax(Buffer.from("99 path=ab\n"))).toThrow(HeaderError);
    expect(() => decodePax(Buffer.from("11 pathxab\n"))).toThrow(HeaderError);
    expect(roundUp(3 * 2 ** 30 + 1)).toBe(3 * 2 ** 30 + 512);
    expect(padding(3 * 2 ** 30 + 1)).toBe(511);
  });
});
