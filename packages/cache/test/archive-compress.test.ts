// Tests for choosing and running compressors: zstd when the program exists, gzip otherwise or
// when forced, recognition by magic bytes, and a round trip through each codec.

import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { defaultCompression, findZstd, sniffCompression } from "../src/index";
import { startCompressor, startDecompressor } from "../src/archive/compress";

async function roundTrip(kind: "zstd" | "gzip", data: Buffer): Promise<{ compressed: Buffer; back: Buffer }> {
  const run = async (codec: ReturnType<typeof startCompressor>, input: Buffer) => {
    const chunks: Buffer[] = [];
    const reading = (async () => {
      for await (const chunk of codec.output) chunks.push(chunk as Buffer);
    })();
    Readable.from([input]).pipe(codec.input);
    await Promise.all([reading, codec.done]);
    return Buffer.concat(chunks);
  };
  const compressed = await run(startCompressor(kind), data);
  return { compressed, back: await run(startDecompressor(kind), compressed) };
}

describe("compression", () => {
  it("prefers zstd when installed, honours CASTLE_ARCHIVE_COMPRESSION, falls back to gzip", () => {
    const none = { PATH: "/nonexistent" };
    expect(findZstd(none)).toBeUndefined();
    expect(defaultCompression(none)).toBe("gzip");
    expect(defaultCompression({ ...none, CASTLE_ARCHIVE_COMPRESSION: "zstd" })).toBe("zstd");
    expect(defaultCompression({ PATH: process.env.PATH, CASTLE_ARCHIVE_COMPRESSION: "gzip" })).toBe("gzip");
    if (findZstd()) expect(defaultCompression({ PATH: process.env.PATH })).toBe("zstd");
  });

  it("recognises blobs by their magic bytes", () => {
    expect(sniffCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0]))).toBe("zstd");
    expect(sniffCompression(Buffer.from([0x1f, 0x8b, 8]))).toBe("gzip");
    expect(sniffCompression(Buffer.from("tar"))).toBeUndefined();
  });

  it.each(["zstd", "gzip"] as const)("round-trips through %s", async (kind) => {
    if (kind === "zstd" && !findZstd()) return;
    const data = Buffer.from("castle ".repeat(100_000));
    const { compressed, back } = await roundTrip(kind, data);
    expect(sniffCompression(compressed)).toBe(kind);
    expect(compressed.length).toBeLessThan(data.length / 10);
    expect(back.equals(data)).toBe(true);
  });

  it("reports a zstd that fails", async () => {
    if (!findZstd()) return;
    const codec = startDecompressor("zstd");
    codec.output.resume();
    codec.input.end(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3, 4, 5]));
    await expect(codec.done).rejects.toThrow(/zstd exited/);
  });
});
