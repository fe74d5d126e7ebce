// Tests for tar headers: what Castle encodes decodes back (pax for long names, links and sizes),
// checksums are enforced, pax records are parsed strictly.

import { describe, expect, it } from "vitest";
import { HeaderError, decodeHeader, decodePax, encodeHeader, headerSpace, padding, roundUp } from "../src/archive/tar-header";

describe("encodeHeader / decodeHeader", () => {
  it("round-trips short entries in one block", () => {
    const out = Buffer.alloc(512);
    expect(encodeHeader(out, 0, { name: "usr/bin/", mode: 0o755, size: 0, type: "dir" })).toBe(512);
    expect(decodeHeader(out)).toMatchObject({ name: "usr/bin/", mode: 0o755, size: 0, type: "dir", linkname: "" });
    encodeHeader(out, 0, { name: "bin", mode: 0o777, size: 0, type: "symlink", linkname: "usr/bin" });
    expect(decodeHeader(out)).toMatchObject({ name: "bin", type: "symlink", linkname: "usr/bin" });
    encodeHeader(out, 0, { name: "s", mode: 0o4755, size: 12345, type: "file" });
    expect(decodeHeader(out)).toMatchObject({ mode: 0o4755, size: 12345, type: "file" });
  });

  it("uses a pax header for long names and links, within headerSpace", () => {
    const name = `${"d".repeat(120)}/é${"f".repeat(80)}`;
    const link = "l".repeat(300);
    const out = Buffer.alloc(headerSpace(name, link));
    const used = encodeHeader(out, 0, { name, mode: 0o777, size: 0, type: "symlink", linkname: link });
    expect(used).toBeGreaterThan(512);
    expect(used).toBeLessThanOrEqual(out.length);
    const pax = decodeHeader(out);
    expect(pax.type).toBe("pax");
    const records = decodePax(out.subarray(512, 512 + pax.size));
    expect(records.get("path")).toBe(name);
    expect(records.get("linkpath")).toBe(link);
  });

  it("refuses a bad checksum and a foreign magic", () => {
    const out = Buffer.alloc(512);
    encodeHeader(out, 0, { name: "a", mode: 0o644, size: 1, type: "file" });
    const flipped = Buffer.from(out);
    flipped[0] = 0x62;
    expect(() => decodeHeader(flipped)).toThrow(HeaderError);
    const noMagic = Buffer.from(out);
    noMagic.write("xxxxx", 257, "latin1");
    expect(() => decodeHeader(noMagic)).toThrow(HeaderError);
  });

  it("parses pax records strictly and pads to blocks past 2 GiB", () => {
    expect(decodePax(Buffer.from("11 path=ab\n")).get("path")).toBe("ab");
    expect(() => decodePax(Buffer.from("99 path=ab\n"))).toThrow(HeaderError);
    expect(() => decodePax(Buffer.from("11 pathxab\n"))).toThrow(HeaderError);
    expect(roundUp(3 * 2 ** 30 + 1)).toBe(3 * 2 ** 30 + 512);
    expect(padding(3 * 2 ** 30 + 1)).toBe(511);
  });
});
