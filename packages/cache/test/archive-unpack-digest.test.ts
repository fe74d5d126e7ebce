// Tests for the output digest computed while unpacking (unpack-digest.ts + the executors): it is
// exactly digestTree() of the unpacked tree, whichever way the archive was decompressed (zstd
// through castle-treeutil's helper and a worker thread, zstd spawned from Node, gzip), for trees
// whose names sort differently as UTF-16 and as bytes, with bodies crossing the 1 MiB slots; and
// it is withheld (undefined) when the archive is not in Castle's order.

import { createReadStream, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { digestTree, findZstd, packTreeToFile, unpackTree } from "../src/index";
import { craftArchive, streamOf, tempDir, writeLayer, writeRandomFile } from "./helpers/trees";

const hasZstd = findZstd() !== undefined;

/** writeLayer plus names whose order differs between UTF-16 and UTF-8, "a-b" beside "a/b", a
 * body bigger than a slot, and a few hundred small files. */
function writeTrickyLayer(root: string): void {
  writeLayer(root);
  mkdirSync(join(root, "names/a"), { recursive: true });
  for (const name of ["a-b", "a.b", "A", "_", "\u{1F600}", "\uFFFD", "\u00e9", "e\u0301", "a/b"]) writeFileSync(join(root, "names", name), name);
  writeRandomFile(join(root, "names/big"), (3 << 20) + 123);
  mkdirSync(join(root, "many"));
  for (let i = 0; i < 300; i++) writeFileSync(join(root, "many", `f${i}`), `${i}`.repeat(i));
}

afterEach(() => {
  delete process.env.CASTLE_TREEUTIL_SERVE;
});

describe("unpackTree({ digest: true })", () => {
  const ways = [
    ["zstd through the helper and a worker", "zstd", "1"],
    ["zstd spawned from Node", "zstd", "0"],
    ["gzip", "gzip", "1"],
  ] as const;
  for (const [label, compression, serve] of ways) {
    it.runIf(hasZstd || compression === "gzip")(`gives digestTree() of the result: ${label}`, async () => {
      process.env.CASTLE_TREEUTIL_SERVE = serve;
      const source = tempDir();
      writeTrickyLayer(source);
      const expected = digestTree(source);
      const file = join(tempDir(), "blob");
      const packed = await packTreeToFile(source, file, { compression });
      const out = tempDir();
      const result = await unpackTree(createReadStream(file, { highWaterMark: 64 << 10 }), out, { digest: true, expectBlobDigest: packed.digest });
      expect(result.treeDigest).toMatchObject({ digest: expected.digest, entries: expected.entries, bytes: expected.bytes, root: out });
      expect(digestTree(out)).toEqual(expected);
    });
  }

  it("gives the digest of an empty tree", async () => {
    const result = await unpackTree(streamOf(await craftArchive([])), tempDir(), { digest: true });
    expect(result.treeDigest?.digest).toBe(digestTree(tempDir()).digest);
  });

  it("withholds it for an archive in another order, which still unpacks", async () => {
    const out = tempDir();
    const archive = await craftArchive([{ name: "b", body: "2" }, { name: "a", body: "1" }]);
    const result = await unpackTree(streamOf(archive), out, { digest: true });
    expect(result.treeDigest).toBeUndefined();
    expect(result.entries).toBe(2);
  });

  it("withholds it when an opaque marker does not follow its directory", async () => {
    const out = tempDir();
    const archive = await craftArchive([
      { name: "d/", type: "directory" },
      { name: "d/x", body: "x" },
      { name: "d/.wh..wh..opq" },
    ]);
    const result = await unpackTree(streamOf(archive), out, { digest: true });
    expect(result.treeDigest).toBeUndefined();
    const inOrder = await unpackTree(streamOf(await craftArchive([
      { name: "d/", type: "directory" },
      { name: "d/.wh..wh..opq" },
      { name: "d/x", body: "x" },
    ])), tempDir(), { digest: true });
    expect(inOrder.treeDigest?.digest).toBe(digestTree(out).digest);
  });

  it("is not computed unless asked", async () => {
    const result = await unpackTree(streamOf(await craftArchive([{ name: "a", body: "1" }])), tempDir());
    expect(result.treeDigest).toBeUndefined();
  });
});
