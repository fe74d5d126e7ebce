// Tests for packing: deterministic bytes (twice, across copies with other mtimes, with or without
// castle-treeutil's helper), a golden test of the tar bytes (a change to them changes every blob),
// the OCI whiteout form, GNU tar reading what Castle writes, gzip fallback, trees Castle refuses.

import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { digestTree, findZstd, packTree, packTreeToFile, sniffCompression, treeutilPath, unpackTree, walkTree } from "../src/index";
import { streamOf, tempDir, writeLayer, writeRandomFile } from "./helpers/trees";

const hasZstd = findZstd() !== undefined;
/** sha256 of the tar (uncompressed) of the golden test's tree. */
const GOLDEN_TAR = "6d50fc08cdea4bc42d8f55d6f31cb9614f52067591d745daf3a3bd1a39d062f5";
if (!hasZstd) console.warn("archive-pack: the zstd program is missing; zstd tests are skipped (apt-get install zstd)");

describe("packTreeToFile", () => {
  it.runIf(hasZstd)("gives the same bytes for the same tree, twice and across copies with other mtimes", async () => {
    const a = tempDir();
    const b = tempDir();
    writeLayer(a);
    execFileSync("cp", ["-a", `${a}/.`, b]);
    for (const entry of walkTree(b)) {
      if (entry.kind === "file" || entry.kind === "dir") utimesSync(join(b, entry.path), 12345, 67890);
    }
    const out = tempDir();
    const first = await packTreeToFile(a, join(out, "1"));
    const second = await packTreeToFile(a, join(out, "2"));
    const copy = await packTreeToFile(b, join(out, "3"));
    expect(first.compression).toBe("zstd");
    expect(second.digest).toBe(first.digest);
    expect(copy.digest).toBe(first.digest);
    expect(readFileSync(join(out, "3")).equals(readFileSync(join(out, "1")))).toBe(true);
    writeFileSync(join(b, "etc/config"), "changed");
    expect((await packTreeToFile(b, join(out, "4"))).digest).not.toBe(first.digest);
  });

  it.runIf(hasZstd)("gives the same bytes whatever zstd's thread count, with or without castle-treeutil's helper", async () => {
    const root = tempDir();
    writeLayer(root);
    writeRandomFile(join(root, "big"), 24 << 20); // Several of zstd's jobs.
    const out = tempDir();
    const served = await packTreeToFile(root, join(out, "served"));
    process.env.CASTLE_TREEUTIL_SERVE = "0";
    try {
      const spawned = await packTreeToFile(root, join(out, "spawned"));
      expect(spawned.digest).toBe(served.digest);
    } finally {
      delete process.env.CASTLE_TREEUTIL_SERVE;
    }
    // Castle packs with -T0 (a thread per core); one thread gives the same blob, so caches agree
    // across machines.
    const tarBytes = execFileSync("zstd", ["-d", "-q", "-c", join(out, "served")], { maxBuffer: 1 << 28 });
    for (const threads of ["-T1", "-T2", "-T3"]) {
      const again = spawnSync("zstd", ["-3", threads, "-q", "-c"], { input: tarBytes, maxBuffer: 1 << 28 });
      expect(again.stdout.equals(readFileSync(join(out, "served"))), threads).toBe(true);
    }
  });

  it("writes these tar bytes, forever: JavaScript's name order, UTF-8 names cut at 100 bytes, big bodies", async () => {
    const umask = process.umask(0o022);
    try {
      const root = tempDir();
      writeLayer(root);
      mkdirSync(join(root, "names/deep"), { recursive: true });
      // UTF-16 order differs from byte order past the BMP (a surrogate sorts below U+E000).
      for (const name of ["a", "B", "ab", "é", "\u{1F600}x", "\uFFFDz", "\uE000q", "日本語", "a b"]) writeFileSync(join(root, "names", name), name);
      writeFileSync(join(root, "names/deep", `${"é".repeat(49)}x${"日".repeat(10)}`), "cut inside a character");
      writeFileSync(join(root, "names/deep", `${"a".repeat(97)}\uFFFD${"b".repeat(5)}`), "cut after U+FFFD");
      symlinkSync("é".repeat(60), join(root, "names/long-target"));
      writeRandomFile(join(root, "names/spliced"), 3 << 20);
      const tar = spawnSync(treeutilPath(), ["pack", root], { maxBuffer: 1 << 28 });
      expect(tar.status, tar.stderr.toString()).toBe(0);
      expect(createHash("sha256").update(tar.stdout).digest("hex")).toBe(GOLDEN_TAR);
      // The blob the store's packer makes holds exactly those bytes.
      const blob = join(tempDir(), "blob.gz");
      await packTreeToFile(root, blob, { compression: "gzip" });
      expect(createHash("sha256").update(gunzipSync(readFileSync(blob))).digest("hex")).toBe(GOLDEN_TAR);
    } finally {
      process.umask(umask);
    }
  });

  it.runIf(hasZstd)("refuses fifos and reserved names, naming them", async () => {
    const fifoTree = tempDir();
    execFileSync("mkfifo", [join(fifoTree, "pipe")]);
    await expect(packTreeToFile(fifoTree, join(tempDir(), "b"))).rejects.toMatchObject({
      code: "CASTLE_ARCHIVE_UNSUPPORTED",
      message: "cannot pack pipe: fifos are not allowed in cached layers",
    });
    const whTree = tempDir();
    mkdirSync(join(whTree, "dir"));
    writeFileSync(join(whTree, "dir/.wh.fake"), "x");
    await expect(packTreeToFile(whTree, join(tempDir(), "b"))).rejects.toMatchObject({
      code: "CASTLE_ARCHIVE_UNSUPPORTED",
      message: "cannot pack dir/.wh.fake: names starting with .wh. are reserved for whiteouts",
      data: { entry: "dir/.wh.fake" },
    });
  });

  it.runIf(hasZstd)("writes a POSIX tar GNU tar lists: walk order, OCI whiteouts, owners 0/0, mtime 0", async () => {
    const root = tempDir();
    writeLayer(root);
    const file = join(tempDir(), "blob");
    await packTreeToFile(root, file);
    const tarBytes = execFileSync("zstd", ["-d", "-q", "-c", file], { maxBuffer: 1 << 28 });
    const listing = spawnSync("tar", ["-tvf", "-", "--numeric-owner"], { input: tarBytes, encoding: "utf8" });
    expect(listing.status).toBe(0);
    const lines = listing.stdout.trim().split("\n");
    const names = lines.map((line) => line.split(/\s+/).slice(5).join(" ").replace(/ -> .*/, ""));
    expect(names).toContain(".wh.gone");
    expect(names).toContain("etc/.wh.removed");
    expect(names).toContain("opt/opaque/.wh..wh..opq");
    expect(names.indexOf("opt/opaque/.wh..wh..opq")).toBe(names.indexOf("opt/opaque/") + 1);
    expect(names).toContain(`usr/share/${"a".repeat(90)}/${"b".repeat(90)}/${"c".repeat(100)}`);
    expect(listing.stdout).toContain(`etc/long-link -> ../${"x".repeat(150)}`);
    for (const line of lines) {
      expect(line).toMatch(/^\S+ 0\/0 +\d+ 1970-01-01 00:00 /);
    }
    expect(lines.find((l) => l.endsWith(" usr/bin/suid"))).toMatch(/^-rwsr-xr-x/);
    expect(lines.find((l) => l.endsWith(" etc/secret"))).toMatch(/^-{10} /);
    expect(lines.find((l) => l.endsWith(" ro/"))).toMatch(/^dr-xr-xr-x/);
  });

  it("falls back to gzip, which unpacks to the same tree", async () => {
    const root = tempDir();
    writeLayer(root);
    const file = join(tempDir(), "blob.gz");
    const packed = await packTreeToFile(root, file, { compression: "gzip" });
    const bytes = readFileSync(file);
    expect(sniffCompression(bytes)).toBe("gzip");
    expect(packed.size).toBe(bytes.length);
    const again = await packTreeToFile(root, `${file}.2`, { compression: "gzip" });
    expect(again.digest).toBe(packed.digest);
    const out = tempDir();
    const result = await unpackTree(streamOf(bytes), out, { expectBlobDigest: packed.digest });
    expect(result.compression).toBe("gzip");
    expect(digestTree(out).digest).toBe(digestTree(root).digest);
  });

  it("streams the same bytes from packTree", async () => {
    const root = tempDir();
    writeLayer(root);
    const file = join(tempDir(), "blob");
    await packTreeToFile(root, file, { compression: "gzip" });
    const chunks: Buffer[] = [];
    for await (const chunk of packTree(root, { compression: "gzip" })) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(readFileSync(file))).toBe(true);
  });

  it("refuses fifos and files that look like whiteouts", async () => {
    const fifoTree = tempDir();
    execFileSync("mkfifo", [join(fifoTree, "pipe")]);
    await expect(packTreeToFile(fifoTree, join(tempDir(), "b"), { compression: "gzip" })).rejects.toMatchObject({
      code: "CASTLE_ARCHIVE_UNSUPPORTED",
      message: expect.stringContaining("pipe"),
    });
    const whTree = tempDir();
    writeFileSync(join(whTree, ".wh.fake"), "x");
    await expect(packTreeToFile(whTree, join(tempDir(), "b"), { compression: "gzip" })).rejects.toMatchObject({
      code: "CASTLE_ARCHIVE_UNSUPPORTED",
      message: expect.stringContaining(".wh.fake"),
    });
  });
});
