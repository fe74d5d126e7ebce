// Reliability: the helper's spec parser under fuzz. Thousands of random and mutated specs go
// straight to castle-sandbox on its spec fd (bit flips, truncations, stray or missing NULs, huge
// counts, wrong arities, unknown ops, 501 lowers, absurd rlimits, random bytes...). Every one
// must end in exit 125 with exactly one `castle-sandbox: ...` line on stderr and one JSON error
// status line, never a signal or a sanitizer report; none may leave a process or a mount behind.
// The specs name lowers that do not exist, so even a spec that parses fails before mounting; a
// smaller set mutates a spec that really runs and only requires a clean, consistent ending.
// Also run against castle-sandbox-asan (`make asan`: ASan + UBSan) when gcc can build it.
// CASTLE_SLOW_TESTS=1 runs 20 000 cases, 2 000 running ones and 5 000 under the sanitizers.

import { execFileSync, spawn as spawnChild } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Readable, Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { helperPath, serializeSpec } from "../../packages/sandbox/src/index";
import {
  LEAK_MARK, busyboxMissing, cleanup, hostChanges, markedProcessesAfter, snapshot, tempDir, type HostSnapshot,
} from "./helpers/sandbox-fixture";
import { makeRootfs } from "../../packages/sandbox/test/fixtures";
import { pool, prng, type Rng } from "../fixtures/fuzz";

const SLOW = process.env.CASTLE_SLOW_TESTS === "1";
const CASES = SLOW ? 20_000 : 3_000;
const RUNNING_CASES = SLOW ? 2_000 : 200;
const ASAN_CASES = SLOW ? 5_000 : 400;
const CONCURRENCY = 8;
const HEADER = "castle-sandbox-spec/1";
const MISSING = "/nonexistent-castle-fuzz";


const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)] as T;
const int = (rng: Rng, n: number) => Math.floor(rng() * n);

const OPS = [
  "argv", "env", "lower", "upper", "bind", "overlay", "tmpfs", "cwd", "hostname", "uid", "gid", "net",
  "overlay-driver", "tty", "rlimit", "keep-caps", "cgroup", "volatile", "enter",
] as const;
/** Argument values that probe the edges; no path here exists on the host. */
const WEIRD = [
  "", "0", "1", "-1", "2", "64", "65", "500", "501", "4096", "4097", "4194305", "4294967295", "4294967296",
  "18446744073709551615", "18446744073709551616", "99999999999999999999999999", "inf", "0x10", "1e3", " 1", "01777",
  "7777", "8", `${MISSING}/a`, `${MISSING}/b/../c`, "/a/../b", "/./x", ".", "..", "relative", `/${"x".repeat(4100)}`,
  "ro", "rw", "none", "host", "auto", "fuse", "kernel", "CAP_SYS_ADMIN", "CAP_NOPE", "SYS_ADMIN", "nofile", "nproc",
  "as", "cpu", "bogus", "KEY=VALUE", "=x", "NOEQUALS", "PATH=/bin", "\xff\xfe\x01", "line\nbreak", "quote\"back\\slash",
  "x".repeat(70),
];

/** A plausible spec whose every host path is missing: tokens, before NUL-joining. */
function baseTokens(rng: Rng): string[] {
  const t = [HEADER, "argv", "3", "/bin/sh", "-c", "echo hi", "env", "PATH=/bin"];
  const lowers = 1 + int(rng, 4);
  for (let i = 0; i < lowers; i++) t.push("lower", `${MISSING}/l${i}`);
  if (rng() < 0.3) t.push("upper", `${MISSING}/u`, `${MISSING}/w`);
  if (rng() < 0.4) t.push("bind", `${MISSING}/src`, "/data", pick(rng, ["ro", "rw"]));
  if (rng() < 0.4) t.push("overlay", "/o", "2", `${MISSING}/o1`, `${MISSING}/o2`, "", "");
  if (rng() < 0.4) t.push("tmpfs", "/t", String(int(rng, 1 << 20)), "755");
  if (rng() < 0.3) t.push("cwd", "/tmp");
  if (rng() < 0.3) t.push("hostname", "fuzz");
  if (rng() < 0.3) t.push("rlimit", pick(rng, ["nofile", "cpu", "as", "nproc"]), "10", "20");
  if (rng() < 0.2) t.push("keep-caps", "2", "CAP_CHOWN", "CAP_KILL");
  if (rng() < 0.2) t.push("net", pick(rng, ["none", "host"]));
  if (rng() < 0.2) t.push("tty");
  if (rng() < 0.2) t.push("volatile", "/");
  return t;
}

/** Ops drawn from the vocabulary with random (often wrong) arities and edge-case values. */
function vocabularyTokens(rng: Rng): string[] {
  const t = [HEADER];
  const n = int(rng, 12);
  for (let i = 0; i < n; i++) {
    t.push(rng() < 0.05 ? pick(rng, ["frobnicate", "ARGV", "argv ", "", "\x01"]) : pick(rng, OPS));
    const args = int(rng, 6);
    for (let j = 0; j < args; j++) t.push(pick(rng, WEIRD));
  }
  return t;
}

const join0 = (tokens: string[]) => Buffer.from(`${tokens.join("\0")}\0`, "latin1");

/** One mutation of a spec's bytes or tokens. */
function mutate(rng: Rng, tokens: string[]): Buffer {
  const t = [...tokens];
  switch (int(rng, 10)) {
    case 0: { // flip 1..8 bits
      const buf = join0(t);
      for (let i = 1 + int(rng, 8); i > 0; i--) {
        const at = int(rng, buf.length);
        buf[at] = (buf[at] as number) ^ (1 << int(rng, 8));
      }
      return buf;
    }
    case 1: return join0(t).subarray(0, int(rng, join0(t).length)); // truncate
    case 2: { // strip NULs: all of them, or a few
      const buf = join0(t);
      const all = rng() < 0.3;
      for (let i = 0; i < buf.length; i++) if (buf[i] === 0 && (all || rng() < 0.2)) buf[i] = 0x41 + int(rng, 26);
      return buf;
    }
    case 3: { // insert random bytes
      const buf = join0(t);
      const at = int(rng, buf.length);
      const junk = Buffer.from(Array.from({ length: 1 + int(rng, 16) }, () => int(rng, 256)));
      return Buffer.concat([buf.subarray(0, at), junk, buf.subarray(at)]);
    }
    case 4: t.splice(1 + int(rng, t.length - 1), 1); return join0(t); // drop a token (wrong arity)
    case 5: t.splice(1 + int(rng, t.length), 0, pick(rng, WEIRD)); return join0(t); // add a token
    case 6: t[1 + int(rng, t.length - 1)] = pick(rng, WEIRD); return join0(t); // replace a token
    case 7: { // duplicate an op with its arguments
      const from = 1 + int(rng, t.length - 1);
      t.push(...t.slice(from, from + 1 + int(rng, 4)));
      return join0(t);
    }
    case 8: return join0(t).subarray(0, join0(t).length - 1); // the last string without its NUL
    default: { // a counted list with a huge or wrong count
      const at = t.findIndex((token, i) => i > 0 && /^\d+$/.test(token));
      if (at > 0) t[at] = pick(rng, ["4097", "501", "65", "99999999999999999999", "18446744073709551615", "-1", "", "3x"]);
      return join0(t);
    }
  }
}

/** Edge cases written out by hand. */
function specials(): [string, Buffer][] {
  const argv = ["argv", "1", "/bin/true"];
  const lower = ["lower", `${MISSING}/l`];
  const out: [string, string[] | Buffer][] = [
    ["empty", Buffer.alloc(0)],
    ["header without NUL", Buffer.from(HEADER)],
    ["header only", [HEADER]],
    ["501 lowers", [HEADER, ...argv, ...Array.from({ length: 501 }, (_, i) => ["lower", `${MISSING}/${i}`]).flat()]],
    ["500 lowers, all missing", [HEADER, ...argv, ...Array.from({ length: 500 }, (_, i) => ["lower", `${MISSING}/${i}`]).flat()]],
    ["overlay with 501 lowers", [HEADER, ...argv, ...lower, "overlay", "/o", "501", ...Array.from({ length: 501 }, () => `${MISSING}/x`), "", ""]],
    ["4097 env entries", [HEADER, ...argv, ...lower, ...Array.from({ length: 4097 }, (_, i) => ["env", `K${i}=v`]).flat()]],
    ["argv count 4097", [HEADER, "argv", "4097", ...Array.from({ length: 4097 }, () => "x"), ...lower]],
    ["argv count 2^64", [HEADER, "argv", "18446744073709551616", "x", ...lower]],
    ["keep-caps 65", [HEADER, ...argv, ...lower, "keep-caps", "65", ...Array.from({ length: 65 }, () => "CAP_CHOWN")]],
    ["rlimit above u64", [HEADER, ...argv, ...lower, "rlimit", "nofile", "18446744073709551616", "inf"]],
    ["rlimit soft above hard", [HEADER, ...argv, ...lower, "rlimit", "as", "inf", "0"]],
    ["rlimit twice", [HEADER, ...argv, ...lower, "rlimit", "cpu", "1", "1", "rlimit", "cpu", "2", "2"]],
    ["17 rlimits", [HEADER, ...argv, ...lower, ...Array.from({ length: 17 }, () => ["rlimit", "core", "0", "0"]).flat()]],
    ["1025 mounts", [HEADER, ...argv, ...lower, ...Array.from({ length: 1025 }, (_, i) => ["tmpfs", `/t${i}`, "0", "755"]).flat()]],
    ["65 volatile ops", [HEADER, ...argv, ...lower, "upper", `${MISSING}/u`, `${MISSING}/w`, ...Array.from({ length: 65 }, () => ["volatile", "/"]).flat()]],
    ["hostname of 65 bytes", [HEADER, ...argv, ...lower, "hostname", "h".repeat(65)]],
    ["uid 2^32-1", [HEADER, ...argv, ...lower, "uid", "4294967295"]],
    ["cwd with ..", [HEADER, ...argv, ...lower, "cwd", "/a/../b"]],
    ["path of 4000 bytes", [HEADER, ...argv, "lower", `/${"p".repeat(4000)}`]],
    ["tmpfs mode 10000", [HEADER, ...argv, ...lower, "tmpfs", "/t", "0", "10000"]],
    ["enter with a lower", [HEADER, ...argv, ...lower, "enter", "1"]],
    ["enter pid 0", [HEADER, ...argv, "enter", "0"]],
    ["enter pid 1", [HEADER, ...argv, "enter", "1"]],
    ["enter ourselves", [HEADER, ...argv, "enter", String(process.pid)]],
    ["enter twice", [HEADER, ...argv, "enter", "1", "enter", "1"]],
    ["over 1 MiB", [HEADER, ...argv, ...lower, ...Array.from({ length: 120_000 }, () => ["env", "K=V"]).flat()]],
  ];
  return out.map(([name, spec]) => [name, Buffer.isBuffer(spec) ? spec : join0(spec)]);
}

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  status: string;
}

function runSpec(helper: string, bytes: Buffer): Promise<Outcome> {
  const child = spawnChild(helper, ["--spec-fd", "3", "--status-fd", "4"], {
    stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"],
    cwd: "/",
    env: { ...process.env, ASAN_OPTIONS: "detect_leaks=0:exitcode=99", UBSAN_OPTIONS: "halt_on_error=1:print_stacktrace=1:exitcode=98" },
  });
  const spec = child.stdio[3] as Writable;
  spec.on("error", () => {}); // the helper may stop reading early (e.g. over 1 MiB)
  spec.end(bytes);
  let stderr = "";
  let status = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString("latin1")));
  (child.stdio[4] as Readable).on("data", (chunk: Buffer) => (status += chunk.toString("utf8")));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stderr, status }));
  });
}

/** What is wrong with the outcome of a bad spec, or undefined. */
function badSpecProblem(o: Outcome): string | undefined {
  if (o.signal) return `killed by ${o.signal}`;
  if (/Sanitizer|runtime error/.test(o.stderr)) return `sanitizer report: ${o.stderr.slice(0, 400)}`;
  if (o.code !== 125) return `exit ${o.code}, not 125 (stderr: ${o.stderr.slice(0, 200)})`;
  const lines = o.stderr.split("\n").filter(Boolean);
  if (lines.length !== 1 || !lines[0]?.startsWith("castle-sandbox: ")) return `stderr is not one castle-sandbox line: ${JSON.stringify(o.stderr.slice(0, 300))}`;
  const status = o.status.split("\n").filter(Boolean);
  if (status.length !== 1) return `expected one status line, got ${JSON.stringify(o.status)}`;
  const event = JSON.parse(status[0] as string) as { event?: string; code?: number };
  if (event.event !== "error" || event.code !== 125) return `status is not an error 125: ${status[0]}`;
  return undefined;
}

/** A spec that really ran (or not): it must still end cleanly and consistently. */
function runningSpecProblem(o: Outcome): string | undefined {
  if (o.signal) return `killed by ${o.signal}`;
  if (/Sanitizer|runtime error/.test(o.stderr)) return `sanitizer report: ${o.stderr.slice(0, 400)}`;
  const events = o.status.split("\n").filter(Boolean).map((line) => JSON.parse(line) as { event: string; code?: number });
  const last = events.at(-1);
  if (!last || (last.event !== "exit" && last.event !== "error")) return `no final status line: ${JSON.stringify(o.status)}`;
  if (last.code !== o.code) return `status says ${last.code}, exit code is ${o.code}`;
  if (last.event === "error" && !(o.code === 125 || o.code === 126 || o.code === 127)) return `error status with exit ${o.code}`;
  return undefined;
}

/** The fuzz corpus for a seed: mutated base specs, vocabulary specs and the hand-written ones. */
function corpus(seed: number, count: number): [string, Buffer][] {
  const rng = prng(seed);
  const cases: [string, Buffer][] = specials();
  for (let i = cases.length; i < count; i++) {
    const kind = int(rng, 10);
    const label = `seed ${seed} case ${i}`;
    if (kind < 6) cases.push([`${label} (mutated)`, mutate(rng, baseTokens(rng))]);
    else if (kind < 9) cases.push([`${label} (vocabulary)`, join0(vocabularyTokens(rng))]);
    else cases.push([`${label} (random bytes)`, Buffer.from(Array.from({ length: int(rng, 512) }, () => int(rng, 256)))]);
  }
  return cases;
}

const SEED = Number(process.env.CASTLE_FUZZ_SEED ?? 20_251_123);

describe.skipIf(busyboxMissing())("sandbox spec fuzz", () => {
  let before: HostSnapshot;
  let asan: string | undefined;
  let asanProblem: string | undefined;
  let rootfs: string;

  beforeAll(() => {
    before = snapshot();
    rootfs = makeRootfs(tempDir("castle-rel-fuzz-"));
    // Built from the helper's sources (helperPath() may be a staged copy, see test/setup).
    const dir = resolve(import.meta.dirname, "../../packages/sandbox/helper");
    try {
      execFileSync("make", ["-s", "-C", dir, "asan"], { stdio: "pipe" });
      asan = join(dir, "castle-sandbox-asan");
      execFileSync(asan, ["--version"], { env: { ...process.env, ASAN_OPTIONS: "detect_leaks=0" } });
    } catch (error) {
      asan = undefined;
      asanProblem = `castle-sandbox-asan could not be built or run (gcc with libasan and libubsan?): ${(error as Error).message.split("\n")[0]}`;
    }
  }, 120_000);

  afterAll(cleanup);

  it(`rejects ${CASES} random and mutated specs cleanly`, async () => {
    const problems: string[] = [];
    await pool(corpus(SEED, CASES), CONCURRENCY, async ([label, bytes]) => {
      const problem = badSpecProblem(await runSpec(helperPath(), bytes));
      if (problem) problems.push(`${label}: ${problem}`);
    });
    expect(problems.slice(0, 10)).toEqual([]);
  }, 300_000);

  it(`ends ${RUNNING_CASES} mutations of a spec that runs cleanly`, async () => {
    const rng = prng(SEED + 1);
    const base = serializeSpec({
      root: { lowers: [rootfs] }, argv: ["/bin/sh", "-c", "exit 3"], env: { PATH: "/bin", MARK: LEAK_MARK },
      mounts: [{ type: "tmpfs", target: "/scratch" }], rlimits: { nofile: 64 },
    });
    const tokens = base.toString("latin1").split("\0").slice(0, -1);
    const problems: string[] = [];
    const codes = new Map<number, number>();
    await pool(Array.from({ length: RUNNING_CASES }, (_, i) => i), CONCURRENCY, async (i) => {
      const outcome = await runSpec(helperPath(), mutate(rng, tokens));
      codes.set(outcome.code ?? -1, (codes.get(outcome.code ?? -1) ?? 0) + 1);
      const problem = runningSpecProblem(outcome);
      if (problem) problems.push(`seed ${SEED + 1} case ${i}: ${problem}`);
    });
    expect(problems.slice(0, 10)).toEqual([]);
    expect(codes.get(3) ?? 0).toBeGreaterThan(0); // some mutations still ran the command
    expect(codes.get(125) ?? 0).toBeGreaterThan(0);
  }, 300_000);

  it(`rejects ${ASAN_CASES} specs under ASan and UBSan without a report`, async (ctx) => {
    if (!asan) {
      console.warn(`skipped: ${asanProblem}`);
      ctx.skip();
    }
    const problems: string[] = [];
    await pool(corpus(SEED + 2, ASAN_CASES), CONCURRENCY, async ([label, bytes]) => {
      const problem = badSpecProblem(await runSpec(asan as string, bytes));
      if (problem) problems.push(`${label}: ${problem}`);
    });
    expect(problems.slice(0, 10)).toEqual([]);
  }, 600_000);

  it("left no process, mount or temp dir behind", async () => {
    expect(await markedProcessesAfter()).toEqual([]);
    const changes = hostChanges(before);
    expect(changes.mounts).toEqual([]);
    expect(changes.tmp).toEqual([]);
    expect(existsSync(MISSING)).toBe(false);
  });
});
