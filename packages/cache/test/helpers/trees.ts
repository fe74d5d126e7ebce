// Test helpers for archives: temp dirs cleaned after each test, sample layer trees with every
// kind of entry Castle carries, and hand-made (possibly hostile) archives built with tar-stream.

import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import tar from "tar-stream";
import { afterAll, afterEach } from "vitest";
import { applyOverlayMarks, removeTree } from "../../src/index";

const temps: string[] = [];
const fileTemps: string[] = [];

/** A fresh temp dir, removed after the current test (scope "test") or test file ("file"). */
export function tempDir(prefix = "castle-test-", scope: "test" | "file" = "test"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  (scope === "test" ? temps : fileTemps).push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of temps.splice(0)) removeTree(dir);
});
afterAll(() => {
  for (const dir of fileTemps.splice(0)) removeTree(dir);
});

/**
 * Fills root with a layer that has everything: nested dirs, an empty dir, empty and executable
 * files, odd modes (setuid, 0o000 file, read-only dir), relative and absolute symlinks, a long
 * path, a whiteout and an opaque directory. seed varies the contents.
 */
export function writeLayer(root: string, seed = "one"): void {
  mkdirSync(join(root, "usr/bin"), { recursive: true });
  mkdirSync(join(root, "etc/empty"), { recursive: true });
  mkdirSync(join(root, "opt/opaque/keep"), { recursive: true });
  writeFileSync(join(root, "usr/bin/tool"), `#!/bin/sh\necho ${seed}\n`, { mode: 0o755 });
  writeFileSync(join(root, "usr/bin/suid"), "s", { mode: 0o755 });
  chmodSync(join(root, "usr/bin/suid"), 0o4755);
  writeFileSync(join(root, "etc/config"), `name=${seed}\n`.repeat(1000));
  writeFileSync(join(root, "etc/empty-file"), "");
  writeFileSync(join(root, "etc/secret"), "hidden", { mode: 0o600 });
  chmodSync(join(root, "etc/secret"), 0o000);
  writeFileSync(join(root, "opt/opaque/keep/data"), seed);
  symlinkSync("usr/bin", join(root, "bin"));
  symlinkSync("/etc/config", join(root, "etc/abs-link"));
  symlinkSync(`../${"x".repeat(150)}`, join(root, "etc/long-link"));
  const long = join(root, "usr", "share", "a".repeat(90), "b".repeat(90));
  mkdirSync(long, { recursive: true });
  writeFileSync(join(long, "c".repeat(100)), "long");
  applyOverlayMarks(root, [
    { op: "w", path: "etc/removed" },
    { op: "w", path: "gone" },
    { op: "o", path: "opt/opaque" },
  ]);
  mkdirSync(join(root, "ro"));
  writeFileSync(join(root, "ro/inside"), "ro");
  chmodSync(join(root, "ro"), 0o555);
}

/** Writes size bytes of incompressible data to file. */
export function writeRandomFile(file: string, size: number, seed = 1): void {
  const buf = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf.writeUInt32LE(x >>> 0, i);
  }
  writeFileSync(file, buf);
}

/** One entry of a hand-made archive (tar-stream's header plus an optional body). */
export interface CraftedEntry {
  name: string;
  type?: "file" | "directory" | "symlink" | "link" | "character-device" | "block-device" | "fifo";
  linkname?: string;
  body?: string | Buffer;
  mode?: number;
  size?: number;
}

/** A tar made with tar-stream (not Castle's packer), uncompressed. */
export async function craftTar(entries: CraftedEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (chunk: unknown) => {
    chunks.push(chunk as Buffer);
  });
  const ended = new Promise<void>((resolve) => pack.on("end", () => resolve()));
  for (const e of entries) {
    const type = e.type ?? "file";
    // tar-stream replaces mode 0 by a default: pass the type bits so 0 survives.
    const mode = (e.mode ?? (type === "directory" ? 0o755 : 0o644)) | (type === "directory" ? 0o40000 : 0o100000);
    const header = { name: e.name, type, linkname: e.linkname, mode, mtime: new Date(0), size: e.size };
    if (type === "file") pack.entry(header, e.body ?? "");
    else pack.entry(header);
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

export function zstdSync(data: Buffer): Buffer {
  const result = spawnSync("zstd", ["-q", "-c"], { input: data, maxBuffer: 1 << 30 });
  if (result.status !== 0) throw new Error(`zstd failed: ${result.stderr}`);
  return result.stdout;
}

/** A crafted archive, compressed (gzip by default, zstd on request). */
export async function craftArchive(entries: CraftedEntry[], compression: "gzip" | "zstd" = "gzip"): Promise<Buffer> {
  const raw = await craftTar(entries);
  return compression === "gzip" ? gzipSync(raw) : zstdSync(raw);
}

export function streamOf(data: Buffer, chunkSize = 1000): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunkSize) chunks.push(data.subarray(i, i + chunkSize));
  return Readable.from(chunks);
}

/** Every path under dir with its type and (for files) contents, to compare before and after. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const visit = (abs: string, rel: string) => {
    for (const entry of readdirSync(abs, { withFileTypes: true })) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      const full = join(abs, entry.name);
      if (entry.isDirectory()) {
        out[path] = "dir";
        visit(full, path);
      } else if (entry.isFile()) out[path] = `file:${readFileSync(full, "utf8")}`;
      else out[path] = "other";
    }
  };
  visit(dir, "");
  return out;
}
