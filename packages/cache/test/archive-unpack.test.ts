// Tests for unpacking: round trips keep the tree's digest (whiteouts, opaque dirs, modes,
// symlinks), and hostile or damaged archives — crafted with tar-stream — are refused with the
// right code, leave the target empty, and never touch anything around it.

import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { beforeEach, describe, expect, it } from "vitest";
import { digestTree, findZstd, packTreeToFile, unpackTree, walkTree } from "../src/index";
import { type CraftedEntry, craftArchive, craftTar, snapshot, streamOf, tempDir, writeLayer } from "./helpers/trees";

const hasZstd = findZstd() !== undefined;

describe("unpackTree round trip", () => {
  it.runIf(hasZstd)("restores a tree with the same digest, whiteouts, opaque dirs and modes", async () => {
    const source = tempDir();
    writeLayer(source);
    const file = join(tempDir(), "blob");
    const packed = await packTreeToFile(source, file);
    const out = tempDir();
    const seen: number[] = [];
    const { createReadStream } = await import("node:fs");
    const result = await unpackTree(createReadStream(file, { highWaterMark: 4096 }), out, {
      expectBlobDigest: packed.digest,
      expectSize: packed.size,
      onBytes: (n) => seen.push(n),
    });
    expect(result).toMatchObject({ blobDigest: packed.digest, size: packed.size, compression: "zstd" });
    expect(seen.at(-1)).toBe(packed.size);
    expect(digestTree(out).digest).toBe(digestTree(source).digest);
    const kinds = Object.fromEntries(walkTree(out).map((e) => [e.path, e]));
    expect(kinds["gone"]?.kind).toBe("whiteout");
    expect(kinds["etc/removed"]?.kind).toBe("whiteout");
    expect(kinds["opt/opaque"]).toMatchObject({ kind: "dir", opaque: true });
    expect(kinds["usr/bin/suid"]).toMatchObject({ mode: 0o4755 });
    expect(kinds["etc/secret"]).toMatchObject({ mode: 0o000 });
    expect(kinds["ro"]).toMatchObject({ mode: 0o555 });
    expect(kinds["etc/abs-link"]).toMatchObject({ kind: "symlink", target: "/etc/config" });
  });

  it("refuses a target that is not empty", async () => {
    const out = tempDir();
    writeFileSync(join(out, "x"), "");
    await expect(unpackTree(streamOf(await craftArchive([{ name: "a" }])), out)).rejects.toMatchObject({
      code: "CASTLE_ARCHIVE_TARGET",
    });
  });
});

describe("unpackTree refuses hostile and damaged archives", () => {
  let around: string;
  let root: string;
  let before: Record<string, string>;
  beforeEach(() => {
    around = tempDir();
    root = join(around, "root");
    mkdirSync(root);
    mkdirSync(join(around, "target"));
    writeFileSync(join(around, "outside.txt"), "untouched");
    symlinkSync(join(around, "target"), join(around, "target-link"));
    before = snapshot(around);
  });

  async function refuse(archive: Buffer | Readable, code: string, entry?: string, options = {}): Promise<void> {
    const input = Buffer.isBuffer(archive) ? streamOf(archive) : archive;
    const error = await unpackTree(input, root, options).then(
      () => undefined,
      (e: unknown) => e as { code: string; message: string },
    );
    expect(error?.code).toBe(code);
    if (entry) expect(error?.message).toContain(entry);
    expect(readdirSync(root)).toEqual([]);
    expect(snapshot(around)).toEqual(before);
  }

  const dir = (name: string): CraftedEntry => ({ name, type: "directory" });

  it("entries that climb out of the root or are absolute", async () => {
    await refuse(await craftArchive([{ name: "../outside.txt", body: "pwned" }]), "CASTLE_ARCHIVE_UNSAFE", "../outside.txt");
    await refuse(await craftArchive([dir("a"), { name: "a/../../outside.txt", body: "pwned" }]), "CASTLE_ARCHIVE_UNSAFE", "a/../../outside.txt");
    await refuse(await craftArchive([{ name: `${around}/outside.txt`, body: "pwned" }]), "CASTLE_ARCHIVE_UNSAFE", "outside.txt");
  });

  it("writing through a symlink, inside or out of the tree", async () => {
    await refuse(
      await craftArchive([{ name: "link", type: "symlink", linkname: join(around, "target") }, { name: "link/file", body: "pwned" }]),
      "CASTLE_ARCHIVE_UNSAFE", "link/file",
    );
    await refuse(
      await craftArchive([{ name: "up", type: "symlink", linkname: ".." }, { name: "up/outside.txt", body: "pwned" }]),
      "CASTLE_ARCHIVE_UNSAFE", "up/outside.txt",
    );
    await refuse(
      await craftArchive([dir("d"), { name: "in", type: "symlink", linkname: "d" }, { name: "in/x", body: "x" }]),
      "CASTLE_ARCHIVE_UNSAFE", "in/x",
    );
    // A symlink replaced by a directory of the same name is a duplicate, not a way through.
    await refuse(
      await craftArchive([{ name: "t", type: "symlink", linkname: join(around, "target") }, dir("t"), { name: "t/x", body: "x" }]),
      "CASTLE_ARCHIVE_UNSAFE", "t",
    );
  });

  it("hardlinks, devices and fifos", async () => {
    await refuse(await craftArchive([{ name: "h", type: "link", linkname: "../outside.txt" }]), "CASTLE_ARCHIVE_UNSAFE", "hardlink");
    await refuse(await craftArchive([{ name: "f" }, { name: "h", type: "link", linkname: "f" }]), "CASTLE_ARCHIVE_UNSAFE", "\"h\"");
    await refuse(await craftArchive([{ name: "null", type: "character-device" }]), "CASTLE_ARCHIVE_UNSAFE", "device");
    await refuse(await craftArchive([{ name: "sda", type: "block-device" }]), "CASTLE_ARCHIVE_UNSAFE", "device");
    await refuse(await craftArchive([{ name: "p", type: "fifo" }]), "CASTLE_ARCHIVE_UNSAFE", "fifo");
  });

  it("duplicates, whiteouts that collide or carry data, entries before their parents", async () => {
    await refuse(await craftArchive([{ name: "a", body: "1" }, { name: "a", body: "2" }]), "CASTLE_ARCHIVE_UNSAFE", "\"a\"");
    await refuse(await craftArchive([{ name: ".wh.a" }, { name: "a", body: "2" }]), "CASTLE_ARCHIVE_UNSAFE", "\"a\"");
    await refuse(await craftArchive([{ name: ".wh.a", body: "data" }]), "CASTLE_ARCHIVE_CORRUPT", ".wh.a");
    await refuse(await craftArchive([{ name: ".wh..wh..opq" }]), "CASTLE_ARCHIVE_CORRUPT", ".wh..wh..opq");
    await refuse(await craftArchive([{ name: "x/y", body: "1" }]), "CASTLE_ARCHIVE_CORRUPT", "x/y");
    await refuse(await craftArchive([{ name: "./a", body: "1" }]), "CASTLE_ARCHIVE_CORRUPT", "./a");
  });

  it("absurd sizes", async () => {
    await refuse(await craftArchive([{ name: "big", body: Buffer.alloc(4096) }]), "CASTLE_ARCHIVE_UNSAFE", "big", { maxEntryBytes: 1024 });
    await refuse(await craftArchive([{ name: "a", body: Buffer.alloc(600) }, { name: "b", body: Buffer.alloc(600) }]), "CASTLE_ARCHIVE_UNSAFE", "\"b\"", { maxTotalBytes: 1000 });
    // A header claiming 8 GiB - 1 with no body behind it: refused by size or as truncated.
    const raw = await craftTar([{ name: "huge", body: "" }]);
    raw.write("77777777777", 124, "latin1");
    fixChecksum(raw);
    await refuse(gzipSync(raw), "CASTLE_ARCHIVE_UNSAFE", "huge", { maxEntryBytes: 2 ** 30 });
    await refuse(gzipSync(raw), "CASTLE_ARCHIVE_CORRUPT");
  });

  it("truncated, garbage, and digest or size mismatches", async () => {
    const good = await craftArchive([dir("d"), { name: "d/file", body: "x".repeat(100_000) }]);
    await refuse(good.subarray(0, good.length - 20), "CASTLE_ARCHIVE_CORRUPT");
    const rawGood = await craftTar([dir("d"), { name: "d/file", body: "x".repeat(10_000) }]);
    await refuse(gzipSync(rawGood.subarray(0, 3000)), "CASTLE_ARCHIVE_CORRUPT", "truncated");
    await refuse(Buffer.from("this is not an archive at all"), "CASTLE_ARCHIVE_CORRUPT");
    await refuse(gzipSync(Buffer.alloc(2048, 0x41)), "CASTLE_ARCHIVE_CORRUPT");
    await refuse(Buffer.alloc(0), "CASTLE_ARCHIVE_CORRUPT");
    await refuse(good, "CASTLE_ARCHIVE_CORRUPT", "expected", { expectBlobDigest: "0".repeat(64) });
    await refuse(good, "CASTLE_ARCHIVE_CORRUPT", "expected", { expectSize: good.length - 1 });
    await refuse(good, "CASTLE_ARCHIVE_CORRUPT", "expected", { expectSize: good.length + 1 });
    if (hasZstd) {
      const zstd = await craftArchive([dir("d"), { name: "d/file", body: "y".repeat(100_000) }], "zstd");
      await refuse(zstd.subarray(0, zstd.length - 5), "CASTLE_ARCHIVE_CORRUPT");
    }
  });

  it.runIf(hasZstd)("the same refusals through zstd, the helper and the unpack worker", async () => {
    const z = (entries: CraftedEntry[]) => craftArchive(entries, "zstd");
    await refuse(await z([{ name: "../outside.txt", body: "pwned" }]), "CASTLE_ARCHIVE_UNSAFE", "../outside.txt");
    await refuse(await z([{ name: "l", type: "symlink", linkname: "../target" }, { name: "l/x", body: "pwned" }]), "CASTLE_ARCHIVE_UNSAFE", "l/x");
    await refuse(await z([dir("d"), { name: "d/big", body: Buffer.alloc(3 << 20, 7) }, { name: "d/big", body: "again" }]), "CASTLE_ARCHIVE_UNSAFE", "d/big");
    await refuse(await z([dir("d"), { name: "d/big", body: Buffer.alloc(3 << 20, 7) }, { name: "h", type: "link", linkname: "d/big" }]), "CASTLE_ARCHIVE_UNSAFE", "hardlink");
    const good = await z([dir("d"), { name: "d/file", body: Buffer.alloc(2 << 20, 1) }]);
    await refuse(good, "CASTLE_ARCHIVE_CORRUPT", "expected", { expectBlobDigest: "0".repeat(64) });
    async function* broken() {
      yield good.subarray(0, 5000);
      throw Object.assign(new Error("connection reset"), { code: "ECONNRESET" });
    }
    await expect(unpackTree(Readable.from(broken()), root)).rejects.toMatchObject({ code: "ECONNRESET" });
    expect(readdirSync(root)).toEqual([]);
    expect(snapshot(around)).toEqual(before);
  });

  it.runIf(hasZstd && canMountTmpfs())("a write that fails in the worker (a full disk) names the entry and leaves nothing", async () => {
    const small = tempDir();
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", small]);
    try {
      const target = join(small, "root");
      mkdirSync(target);
      const archive = await craftArchive([dir("d"), { name: "d/fits", body: "x" }, { name: "d/too-big", body: Buffer.alloc(4 << 20, 3) }], "zstd");
      const error = await unpackTree(streamOf(archive, 64 << 10), target, { digest: true }).catch((e: unknown) => e as { code: string; message: string });
      expect(error).toMatchObject({ code: "CASTLE_ARCHIVE_IO", message: expect.stringContaining("d/too-big") });
      expect(readdirSync(target)).toEqual([]);
    } finally {
      execFileSync("umount", [small]);
    }
  });

  it("an input stream that fails passes its error through, after cleaning up", async () => {
    const good = await craftArchive([dir("d"), { name: "d/file", body: "x".repeat(100_000) }]);
    async function* broken() {
      yield good.subarray(0, 500);
      throw Object.assign(new Error("connection reset"), { code: "ECONNRESET" });
    }
    await expect(unpackTree(Readable.from(broken()), root)).rejects.toMatchObject({ code: "ECONNRESET" });
    expect(readdirSync(root)).toEqual([]);
    expect(snapshot(around)).toEqual(before);
  });

  it.runIf(hasZstd)("a failed unpack through the worker leaves no file descriptor open, whichever side stops first", async () => {
    // 64 MiB of file bodies in a few kB of zstd: the worker is still writing when the input fails.
    const big = await craftArchive([dir("d"), { name: "d/a", body: "x".repeat(32 << 20) }, { name: "d/b", body: "y".repeat(32 << 20) }], "zstd");
    const openFds = () => readdirSync("/proc/self/fd").length;
    await unpackTree(streamOf(await craftArchive([dir("d")], "zstd")), root); // Starts the pooled worker (it holds fds of its own).
    rmSync(join(root, "d"), { recursive: true });
    const settled = () => new Promise((resolve) => setTimeout(resolve, 20));
    await settled(); // The warm-up's fifo and socket close on a later turn of the event loop.
    const baseline = openFds();
    for (let i = 0; i < 24; i++) {
      // The input fails at a different point each time: in the first body, in the second, near the end.
      const cut = Math.max(64, Math.floor((big.length * ((i % 8) + 1)) / 9));
      async function* broken() {
        yield big.subarray(0, cut);
        await new Promise((resolve) => setTimeout(resolve, i % 3));
        throw Object.assign(new Error("connection reset"), { code: "ECONNRESET" });
      }
      await expect(unpackTree(Readable.from(broken()), root)).rejects.toMatchObject({ code: "ECONNRESET" });
      expect(readdirSync(root)).toEqual([]);
    }
    // Sockets close on the event loop's next turn: a leak stays, a close in flight goes.
    for (let wait = 0; wait < 50 && openFds() > baseline; wait++) await settled();
    expect(openFds()).toBe(baseline);
  });
});

/** Mounting a tmpfs needs root (and a kernel that lets this container do it). */
function canMountTmpfs(): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = tempDir();
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe], { stdio: "ignore" });
    execFileSync("umount", [probe], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function fixChecksum(block: Buffer): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += block[i] as number;
  block.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
}
