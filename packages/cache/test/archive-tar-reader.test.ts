// Tests for the incremental tar parser: any chunking gives the same entries and bodies, and
// data after the end marker or a missing end marker is refused.

import { describe, expect, it } from "vitest";
import { TarReader } from "../src/archive/tar-reader";
import { craftTar } from "./helpers/trees";

async function sample(): Promise<Buffer> {
  return craftTar([
    { name: "d", type: "directory" },
    { name: "d/one", body: "1".repeat(700) },
    { name: `d/${"long".repeat(40)}`, body: "" },
    { name: "d/link", type: "symlink", linkname: "one" },
  ]);
}

function parse(tar: Buffer, chunk: number): Array<{ name: string; body: string }> {
  const seen: Array<{ name: string; body: string }> = [];
  const reader = new TarReader((header) => {
    const entry = { name: header.name, body: "" };
    seen.push(entry);
    return { write: (buf, start, end) => void (entry.body += buf.toString("utf8", start, end)), end: () => {} };
  });
  for (let i = 0; i < tar.length; i += chunk) reader.push(tar.subarray(i, i + chunk));
  reader.end();
  return seen;
}

describe("TarReader", () => {
  it("gives the same entries for any chunk size", async () => {
    const tar = await sample();
    const whole = parse(tar, tar.length);
    expect(whole.map((e) => e.name)).toEqual(["d", "d/one", `d/${"long".repeat(40)}`, "d/link"]);
    expect(whole[1]?.body).toBe("1".repeat(700));
    for (const size of [1, 7, 511, 512, 513, 4096]) expect(parse(tar, size)).toEqual(whole);
  });

  it("refuses a missing end marker and data after it", async () => {
    const tar = await sample();
    expect(() => parse(tar.subarray(0, tar.length - 1024), 512)).toThrow(expect.objectContaining({ code: "CASTLE_ARCHIVE_CORRUPT" }));
    const trailing = Buffer.concat([tar, Buffer.from("junk".padEnd(512, "!"))]);
    expect(() => parse(trailing, 512)).toThrow(/after its end-of-archive marker/);
    expect(parse(Buffer.concat([tar, Buffer.alloc(10240)]), 1000)).toHaveLength(4);
  });
});
