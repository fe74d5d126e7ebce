// Reliability: the archive unpacker against hostile and damaged input. Handcrafted attacks
// (paths that climb out, absolute paths, symlink and hardlink escapes, devices, absurd sizes,
// duplicate entries, long names and pax headers, broken compression) must each be refused with
// CASTLE_ARCHIVE_UNSAFE or _CORRUPT; then thousands of archives mutated from valid seeds (bit
// flips, header fields rewritten with a fixed-up checksum, cuts, duplicated and reordered
// members, broken compressed streams), fed in random chunk sizes. For every case: no crash, no
// hang, a CastleError or success — never anything written outside the root (sentinels around it
// are checked after every case), and nothing left in the root after a refusal.
// Normal runs: 2 000 mutated archives (~10 s); CASTLE_SLOW_TESTS=1: 20 000 (~90 s).

import { execFileSync } from "node:child_process";
import {
  chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gunzipSync, gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyOverlayMarks, digestTree, findZstd, packTree, removeTree, unpackTree, type UnpackOptions } from "@castle/cache";
import { isCastleError } from "@castle/errors";
import { random, SLOW, type Random } from "./helpers/random";
import { BLOCK, craftTar, fixChecksum, members, type CraftEntry } from "./helpers/tar-craft";

const ITERATIONS = SLOW ? 20_000 : 2_000;
const CASE_TIMEOUT_MS = 15_000;
const ZSTD = findZstd();

/** Everything the fuzzer touches lives under here; anything unexpected in it is an escape. */
let arena: string;
let caseCount = 0;
beforeAll(() => {
  arena = mkdtempSync(join(tmpdir(), "castle-rel-fuzz-"));
  writeFileSync(join(arena, "arena-sentinel"), "arena\n");
});
afterAll(() => {
  if (arena) removeTree(arena);
});

interface Case {
  dir: string;
  root: string;
  outside: string;
}

let current: Case | undefined;

/** The case dir in use: <dir>/root (the target), <dir>/outside/target and <dir>/sentinel
 * around it. It is reused while cases leave it as it was (checked after every case). */
function caseDir(): Case {
  return (current ??= newCase());
}

function newCase(): Case {
  const dir = join(arena, `case${++caseCount}`);
  mkdirSync(dir);
  const root = join(dir, "root");
  const outside = join(dir, "outside");
  mkdirSync(root);
  mkdirSync(outside);
  writeFileSync(join(outside, "target"), "sentinel\n");
  writeFileSync(join(dir, "sentinel"), "sentinel\n");
  return { dir, root, outside };
}

/** Problems with what a case left around its root (nothing may appear, change or vanish). */
function escapes(c: Case): string[] {
  const problems: string[] = [];
  const around = readdirSync(c.dir).sort();
  if (around.join() !== "outside,root,sentinel") problems.push(`next to the root: ${around.join(", ")}`);
  const out = readdirSync(c.outside);
  if (out.join() !== "target") problems.push(`in outside/: ${out.join(", ")}`);
  for (const file of [join(c.outside, "target"), join(c.dir, "sentinel")]) {
    const st = lstatSync(file);
    if (!st.isFile() || st.nlink !== 1 || readFileSync(file, "utf8") !== "sentinel\n") problems.push(`${file} was changed`);
  }
  const arenaNames = readdirSync(arena).filter((n) => !/^case\d+$/.test(n));
  if (arenaNames.join() !== "arena-sentinel") problems.push(`in the arena: ${arenaNames.join(", ")}`);
  if (readFileSync(join(arena, "arena-sentinel"), "utf8") !== "arena\n") problems.push("the arena sentinel was changed");
  return problems;
}

/** Problems with a root after a successful unpack: only dirs, files, symlinks and whiteouts. */
function oddities(root: string): string[] {
  const problems: string[] = [];
  const visit = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const abs = join(dir, name);
      const st = lstatSync(abs);
      if (st.isDirectory()) {
        if ((st.mode & 0o700) !== 0o700) chmodSync(abs, st.mode | 0o700);
        visit(abs);
      } else if (st.isFile()) {
        if (st.nlink !== 1) problems.push(`${abs} is hardlinked`);
      } else if (st.isCharacterDevice()) {
        if (st.rdev !== 0) problems.push(`${abs} is a device node`);
      } else if (!st.isSymbolicLink()) problems.push(`${abs} has an odd type`);
    }
  };
  visit(root);
  return problems;
}

function compress(tar: Buffer, kind: "gzip" | "zstd"): Buffer {
  return kind === "gzip" ? gzipSync(tar, { level: 1 }) : execFileSync(ZSTD!, ["-q", "-c", "-1"], { input: tar, maxBuffer: 1 << 30 });
}

/** The bytes as a stream of random-sized chunks (so entries straddle chunk boundaries). */
function chunked(bytes: Buffer, rng: Random): Readable {
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const size = rng.pick([1, 7, 512, 513, 4096, 65536, bytes.length]);
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  return Readable.from(chunks, { objectMode: false });
}

type Outcome = { ok: true; entries: number } | { ok: false; code: string; message: string };

/** Unpacks one archive in a fresh case and checks every invariant; returns what happened. */
async function attempt(bytes: Buffer, rng: Random, options: UnpackOptions = {}, label = ""): Promise<Outcome> {
  const c = caseDir();
  let outcome: Outcome;
  let timer: NodeJS.Timeout | undefined;
  try {
    const unpack = unpackTree(chunked(bytes, rng), c.root, options);
    const hang = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`unpack hung for ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS);
    });
    const result = await Promise.race([unpack, hang]);
    outcome = { ok: true, entries: result.entries };
  } catch (error) {
    if (!isCastleError(error)) throw new Error(`${label}: not a CastleError: ${String((error as Error)?.stack ?? error)}`);
    outcome = { ok: false, code: error.code, message: error.message };
  } finally {
    clearTimeout(timer);
  }
  const problems = escapes(c);
  if (outcome.ok) problems.push(...oddities(c.root));
  else {
    if (!["CASTLE_ARCHIVE_UNSAFE", "CASTLE_ARCHIVE_CORRUPT"].includes(outcome.code)) problems.push(`unexpected code ${outcome.code}: ${outcome.message}`);
    const left = readdirSync(c.root);
    if (left.length > 0) problems.push(`a refused archive left ${left.join(", ")} in the root`);
  }
  if (problems.length > 0) {
    current = undefined; // Leave the evidence where it is; the next case starts afresh.
    throw new Error(`${label} (rng seed ${rng.seed}): ${problems.join("; ")}\noutcome: ${JSON.stringify(outcome)}`);
  }
  if (outcome.ok) {
    removeTree(c.root);
    mkdirSync(c.root);
  }
  return outcome;
}

// ---- seeds ---------------------------------------------------------------------------------

/** A layer tree like Castle builds: dirs, files of awkward sizes, links, long names, whiteouts. */
function seedTree(dir: string, variant: number): void {
  mkdirSync(join(dir, "usr/bin"), { recursive: true });
  mkdirSync(join(dir, "etc/ssl"), { recursive: true });
  mkdirSync(join(dir, "var/empty"), { recursive: true });
  for (const size of [0, 1, 511, 512, 513, 10_000 + variant]) writeFileSync(join(dir, `usr/bin/f${size}`), Buffer.alloc(size, 97 + variant));
  writeFileSync(join(dir, "usr/bin/tool"), "#!/bin/sh\necho tool\n", { mode: 0o755 });
  chmodSync(join(dir, "usr/bin/tool"), 0o4755);
  symlinkSync("tool", join(dir, "usr/bin/alias"));
  symlinkSync("/etc/ssl/certs", join(dir, "etc/certs"));
  const long = join(dir, "usr", "share-" + "x".repeat(120), "y".repeat(150));
  mkdirSync(long, { recursive: true });
  writeFileSync(join(long, "z".repeat(200)), "deep\n");
  chmodSync(join(dir, "var/empty"), 0o555);
  try {
    applyOverlayMarks(dir, [{ op: "w", path: "etc/removed" }, { op: "o", path: "etc/ssl" }]);
  } catch {
    // Whiteouts need mknod (root or a user namespace): the seed goes without them.
  }
}

let seeds: Buffer[] = [];
beforeAll(async () => {
  for (let variant = 0; variant < 3; variant++) {
    const dir = join(arena, `seed${variant}`);
    mkdirSync(dir);
    seedTree(dir, variant);
    const gz: Buffer[] = [];
    for await (const chunk of packTree(dir, { compression: "gzip" })) gz.push(chunk as Buffer);
    seeds.push(gunzipSync(Buffer.concat(gz)));
    chmodSync(join(dir, "var/empty"), 0o755);
    removeTree(dir);
  }
  // A handcrafted seed with pax records and an empty directory.
  seeds.push(craftTar([
    { name: "a/", type: "5" },
    { name: "a/b", body: "bee\n" },
    { name: "a/x", pax: { path: "a/" + "p".repeat(150) }, body: "pax\n" },
    { name: "a/l", type: "2", linkname: "b" },
  ]));
});

// ---- handcrafted attacks ---------------------------------------------------------------------

/** Each must be refused, with this code. `outside` is the absolute path of the case's outside/. */
function attacks(outside: string): Array<[string, CraftEntry[] | Buffer, "UNSAFE" | "CORRUPT", UnpackOptions?]> {
  const f = (name: string, body = "x\n"): CraftEntry => ({ name, body });
  const d = (name: string): CraftEntry => ({ name, type: "5" });
  const l = (name: string, linkname: string): CraftEntry => ({ name, type: "2", linkname });
  return [
    ["parent traversal", [f("../escape")], "UNSAFE"],
    ["traversal after a dir", [d("a/"), f("a/../../escape")], "UNSAFE"],
    ["absolute path", [f(`${outside}/abs-escape`)], "UNSAFE"],
    ["absolute dir", [d(`${outside}/dir/`)], "UNSAFE"],
    ["write through a symlink to ..", [l("up", ".."), f("up/escape")], "UNSAFE"],
    ["write through an absolute symlink", [l("out", outside), f("out/escape")], "UNSAFE"],
    ["dir through a symlink", [l("out", "../outside"), d("out/sub/")], "UNSAFE"],
    ["overwrite a file through a symlink", [l("t", `${outside}/target`), f("t")], "UNSAFE"],
    ["symlink replaced by a dir", [l("t", "../outside"), d("t/")], "UNSAFE"],
    ["hardlink outside", [{ name: "hl", type: "1", linkname: `${outside}/target` }], "UNSAFE"],
    ["hardlink climbing", [{ name: "hl", type: "1", linkname: "../outside/target" }], "UNSAFE"],
    ["hardlink inside", [f("a"), { name: "hl", type: "1", linkname: "a" }], "UNSAFE"],
    ["char device", [{ name: "null", type: "3" }], "UNSAFE"],
    ["block device", [{ name: "sda", type: "4" }], "UNSAFE"],
    ["fifo", [{ name: "fifo", type: "6" }], "UNSAFE"],
    ["whiteout through a symlink", [l("s", "../outside"), f("s/.wh.target", "")], "UNSAFE"],
    ["opaque marker through a symlink", [l("s", "../outside"), f("s/.wh..wh..opq", "")], "UNSAFE"],
    ["whiteout of ..", [f(".wh..", "")], "CORRUPT"],
    ["whiteout with a body", [f(".wh.gone", "body")], "CORRUPT"],
    ["root marked opaque", [f(".wh..wh..opq", "")], "CORRUPT"],
    ["whiteout then the same name", [f(".wh.a", ""), f("a")], "UNSAFE"],
    ["duplicate file", [f("a", "one"), f("a", "two")], "UNSAFE"],
    ["duplicate dir", [d("a/"), d("a/")], "UNSAFE"],
    ["file then dir of one name", [f("a"), d("a/")], "UNSAFE"],
    ["child before its parent", [f("x/y")], "CORRUPT"],
    ["child of a file", [f("x"), f("x/y")], "CORRUPT"],
    ["absurd size field", [{ name: "huge", size: 0o77777777777 }], "CORRUPT"],
    ["absurd pax size", [{ name: "huge", pax: { size: "99999999999999" } }], "UNSAFE"],
    ["bad pax size", [{ name: "huge", pax: { size: "12abc" } }], "CORRUPT"],
    ["base-256 size", [{ name: "b256", rawSize: Buffer.from([0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0]) }], "CORRUPT"],
    ["pax path climbing", [{ name: "innocent", pax: { path: "../../escape" }, body: "x" }], "UNSAFE"],
    ["pax path absolute", [{ name: "innocent", pax: { path: `${outside}/pax-escape` }, body: "x" }], "UNSAFE"],
    ["pax linkpath + write through", [{ name: "s", type: "2", linkname: "ok", pax: { linkpath: outside } }, f("s/escape")], "UNSAFE"],
    ["pax path with NUL", [{ name: "n", pax: { path: "a\u0000b" } }], "CORRUPT"],
    ["pax path too long", [{ name: "long", pax: { path: "d/".repeat(2100) + "f" } }], "UNSAFE"],
    ["name component too long", [{ name: "long", pax: { path: "n".repeat(300) } }], "UNSAFE"],
    ["pax header too big", [{ name: "big", pax: { comment: "c".repeat(1 << 21) } }], "UNSAFE"],
    ["pax record with a bad length", Buffer.concat([craftTar([{ name: "././@PaxHeader", type: "x", body: "99 path=x\n" }], { end: false }), craftTar([f("x")])]), "CORRUPT"],
    ["pax header at the end", craftTar([{ name: "././@PaxHeader", type: "x", body: "11 path=x\n" }]), "CORRUPT"],
    ["global pax header", [{ name: "g", type: "g", body: "11 path=x\n" }], "CORRUPT"],
    ["GNU long name", [{ name: "././@LongLink", type: "L", body: "../escape\0" }, f("short")], "CORRUPT"],
    ["ustar prefix climbing", [{ name: "escape", prefix: "../..", body: "x" }], "UNSAFE"],
    ["bad checksum", [{ ...f("a"), badChecksum: true }], "CORRUPT"],
    ["not ustar", [{ ...f("a"), magic: "notatar\0" }], "CORRUPT"],
    ["symlink with an empty target", [l("s", "")], "CORRUPT"],
    ["dir with a body", [{ name: "d/", type: "5", body: "x" }], "CORRUPT"],
    ["truncated body", craftTar([f("a", "y".repeat(2000))]).subarray(0, 1024), "CORRUPT"],
    ["no end marker", craftTar([f("a")], { end: false }), "CORRUPT"],
    ["data after the end", Buffer.concat([craftTar([f("a")]), craftTar([f("b")])]), "CORRUPT"],
    ["too many entries", Array.from({ length: 60 }, (_, i) => f(`e${i}`)), "UNSAFE", { maxEntries: 50 }],
    ["too many bytes", [f("a", "y".repeat(4000)), f("b", "y".repeat(4000))], "UNSAFE", { maxTotalBytes: 6000 }],
    ["entry too big", [f("a", "y".repeat(4000))], "UNSAFE", { maxEntryBytes: 1000 }],
  ];
}

describe("archive unpacker: handcrafted attacks", () => {
  it("refuses every attack cleanly, gzip and zstd, leaving nothing outside or inside the root", async () => {
    const rng = random();
    const count = attacks("/x").length;
    expect(count).toBeGreaterThan(45);
    for (let index = 0; index < count; index++) {
      for (const kind of ZSTD ? (["gzip", "zstd"] as const) : (["gzip"] as const)) {
        // Absolute paths point at the case's own outside/, where its sentinel catches them.
        const [name, entries, code, options] = attacks(caseDir().outside)[index]!;
        const tar = Buffer.isBuffer(entries) ? entries : craftTar(entries);
        const outcome = await attempt(compress(tar, kind), rng, options, `${name} (${kind})`);
        expect(outcome, `${name} (${kind})`).toMatchObject({ ok: false, code: `CASTLE_ARCHIVE_${code}` });
      }
    }
  });

  it("refuses broken compressed streams: empty, garbage, truncated, bit-flipped, trailing junk, wrong digest", async () => {
    const rng = random();
    const good = craftTar([{ name: "a/", type: "5" }, { name: "a/b", body: "x".repeat(5000) }]);
    const streams: Array<[string, Buffer, UnpackOptions?]> = [
      ["empty", Buffer.alloc(0)],
      ["garbage", Buffer.from("this is not an archive at all")],
      ["an uncompressed tar", good],
      ["a gzip header only", gzipSync(good).subarray(0, 12)],
      ["truncated gzip", gzipSync(good).subarray(0, 60)],
      ["gzip of garbage", gzipSync(Buffer.from("garbage".repeat(300)))],
      ["bit-flipped gzip", (() => { const b = Buffer.from(gzipSync(good)); b[b.length - 30]! ^= 0x40; return b; })()],
      ["gzip with a wrong size", gzipSync(good), { expectSize: 10 }],
      ["gzip with a wrong digest", gzipSync(good), { expectBlobDigest: "0".repeat(64) }],
    ];
    if (ZSTD) {
      const z = compress(good, "zstd");
      streams.push(
        ["a zstd magic only", z.subarray(0, 4)],
        ["truncated zstd", z.subarray(0, Math.floor(z.length / 2))],
        ["bit-flipped zstd", (() => { const b = Buffer.from(z); b[Math.floor(b.length / 2)]! ^= 0xff; return b; })()],
        ["zstd then junk", Buffer.concat([z, Buffer.from("junk after the frame")])],
        ["zstd of garbage", compress(Buffer.from("garbage".repeat(300)), "zstd")],
      );
    }
    for (const [name, bytes, options] of streams) {
      const outcome = await attempt(bytes, rng, options, name);
      expect(outcome, name).toMatchObject({ ok: false, code: "CASTLE_ARCHIVE_CORRUPT" });
    }
  });

  it("unpacks every valid seed to the tree it was packed from", async () => {
    const rng = random();
    for (const [i, seed] of seeds.entries()) {
      const outcome = await attempt(compress(seed, i % 2 === 0 ? "gzip" : (ZSTD ? "zstd" : "gzip")), rng, {}, `seed ${i}`);
      expect(outcome.ok, `seed ${i}: ${JSON.stringify(outcome)}`).toBe(true);
    }
  });
});

// ---- mutation fuzzing ------------------------------------------------------------------------

const TYPEFLAGS = ["0", "1", "2", "3", "4", "5", "6", "7", "x", "g", "L", "K", "\0", "Z"];
/** Names a mutation may give an entry; absolute ones point into the arena, where they would show. */
const names = () => ["..", "../x", `${arena}/abs`, "a/../../x", "", ".", "./a", "a//b", ".wh.x", ".wh..wh..opq", "usr", "usr/bin", "usr/bin/alias/x", "x".repeat(99)];
const links = () => ["..", "/", "../outside", `${arena}/case0`, "usr/bin/tool", "x".repeat(100)];

/** One random mutation of a raw tar (sometimes several). */
function mutate(tar: Buffer, rng: Random): { bytes: Buffer; how: string } {
  let bytes = Buffer.from(tar);
  const hows: string[] = [];
  const rounds = rng.int(1, 3);
  for (let r = 0; r < rounds; r++) {
    const list = members(bytes);
    const member = list.length > 0 ? rng.pick(list) : undefined;
    const kind = rng.int(0, 11);
    if (kind <= 1 || !member) {
      const flips = rng.int(1, 8);
      for (let i = 0; i < flips; i++) bytes[rng.int(0, bytes.length - 1)]! ^= 1 << rng.int(0, 7);
      hows.push(`flip ${flips} bits`);
    } else if (kind <= 6) {
      // Rewrite a header field and fix the checksum, so the change reaches the semantic checks.
      const h = member.header;
      const which = rng.int(0, 6);
      if (which === 0) {
        bytes.fill(0, h, h + 100);
        bytes.write(rng.pick(names()), h, 100, "utf8");
      } else if (which === 1) bytes[h + 156] = rng.pick(TYPEFLAGS).charCodeAt(0);
      else if (which === 2) bytes.write(rng.pick(["77777777777", "00000000000", "00000001000", "1", "99999999999", "0000000001 "]), h + 124, 11, "latin1");
      else if (which === 3) {
        bytes.fill(0, h + 157, h + 257);
        bytes.write(rng.pick(links()), h + 157, 100, "utf8");
      } else if (which === 4) bytes.write(rng.pick(["0007777", "0000000", "0004755", "7777777"]), h + 100, 7, "latin1");
      else if (which === 5) bytes.write(rng.pick(["../..", "usr", arena, "x".repeat(155)]), h + 345, 155, "utf8");
      else bytes.write(rng.pick(["ustar ", "gnutar", "\0\0\0\0\0\0"]), h + 257, 6, "latin1");
      fixChecksum(bytes, h);
      hows.push(`field ${which} of the member at ${h}`);
    } else if (kind === 7) {
      bytes = Buffer.concat([bytes.subarray(0, member.end), bytes.subarray(member.start, member.end), bytes.subarray(member.end)]);
      hows.push(`duplicate the member at ${member.start}`);
    } else if (kind === 8 && list.length > 1) {
      const other = rng.pick(list);
      const [a, b] = member.start < other.start ? [member, other] : [other, member];
      if (a !== b) {
        bytes = Buffer.concat([bytes.subarray(0, a.start), bytes.subarray(b.start, b.end), bytes.subarray(a.end, b.start), bytes.subarray(a.start, a.end), bytes.subarray(b.end)]);
        hows.push(`swap members at ${a.start} and ${b.start}`);
      }
    } else if (kind === 9) {
      const at = rng.int(0, Math.floor(bytes.length / BLOCK)) * BLOCK;
      bytes = bytes.subarray(0, at);
      hows.push(`cut at ${at}`);
    } else if (kind === 10) {
      const junk = Buffer.alloc(BLOCK);
      for (let i = 0; i < junk.length; i++) junk[i] = rng.int(0, 255);
      bytes = Buffer.concat([bytes.subarray(0, member.start), junk, bytes.subarray(member.start)]);
      hows.push(`junk block at ${member.start}`);
    } else {
      bytes = bytes.subarray(0, member.end);
      hows.push("drop the end marker");
    }
  }
  return { bytes, how: hows.join(", ") };
}

describe("archive unpacker: mutation fuzzing", () => {
  it(`survives ${ITERATIONS} mutated archives: refused cleanly or unpacked safely, never escaping`, async () => {
    const rng = random();
    let refused = 0;
    let accepted = 0;
    const codes = new Map<string, number>();
    for (let i = 0; i < ITERATIONS; i++) {
      const seed = rng.pick(seeds);
      const { bytes, how } = mutate(seed, rng);
      // Mostly gzip (in process); some zstd, whose two processes per case cost more.
      const kind = ZSTD && rng.bool(0.05) ? "zstd" : "gzip";
      let blob = compress(bytes, kind);
      let label = `case ${i}: ${how} (${kind})`;
      if (rng.bool(0.05)) {
        // Damage the compressed stream itself.
        blob = Buffer.from(blob);
        if (rng.bool()) blob = blob.subarray(0, rng.int(0, blob.length - 1));
        else blob[rng.int(0, blob.length - 1)]! ^= 1 << rng.int(0, 7);
        label += ", compressed stream damaged";
      }
      const outcome = await attempt(blob, rng, {}, label);
      if (outcome.ok) accepted++;
      else {
        refused++;
        codes.set(outcome.code, (codes.get(outcome.code) ?? 0) + 1);
      }
    }
    // The fuzzer must exercise both sides: archives that still unpack, and ones refused.
    expect(refused).toBeGreaterThan(ITERATIONS / 4);
    expect(accepted).toBeGreaterThan(ITERATIONS / 50);
    expect(codes.get("CASTLE_ARCHIVE_UNSAFE")).toBeGreaterThan(0);
    expect(codes.get("CASTLE_ARCHIVE_CORRUPT")).toBeGreaterThan(0);
  }, SLOW ? 900_000 : 120_000);

  it("unpacks the same valid archive to the same digest whatever the chunking", async () => {
    const rng = random();
    const dir = mkdtempSync(join(arena, "digest-"));
    const digests = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const root = join(dir, `r${i}`);
      mkdirSync(root);
      await unpackTree(chunked(compress(seeds[0]!, "gzip"), rng), root);
      digests.add(digestTree(root).digest);
    }
    expect(digests.size).toBe(1);
    removeTree(dir);
  });
});
