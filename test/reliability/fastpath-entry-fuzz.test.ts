// Reliability: the native launcher's reading of fast-path entries under fuzz. A valid entry
// (every path in it missing from this machine) is cut short at every kind of place, bit-flipped,
// given stray NULs, unknown ops, huge counts and random bytes, and put where the launcher looks
// for `castle run <dir> -- /bin/true`. Every one must end in a fall-through — one `castle: fast
// path: not taken: <why>` line — never a crash, a hang or a sanitizer report; the launcher under
// test (castle-asan: ASan + UBSan, `make asan`) has no node to fall through to, so it then says
// so and exits 1. CASTLE_SLOW_TESTS=1 runs 10 000 cases.

import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serializeEntry, type FastPathEntry } from "../../packages/cli/src/fastpath/entry-format";
import { entryName } from "../../packages/cli/src/fastpath/entry-key";
import { prng } from "../fixtures/fuzz";

const SLOW = process.env.CASTLE_SLOW_TESTS === "1";
const CASES = SLOW ? 10_000 : 300;
const CONCURRENCY = 8;
const LAUNCHER_DIR = resolve(import.meta.dirname, "../../packages/cli/launcher");
const MISSING = "/nonexistent-castle-fastpath-fuzz";


const present = { kind: "present" as const, dev: 2049, ino: 1234567, mode: 0o100644, size: 42, mtimeMs: 1796615938878.7559, ctimeMs: 1796615938878.7559 };

function validEntry(dir: string): FastPathEntry {
  return {
    key: { dir, arg: dir, tty: false, command: ["/bin/true"] },
    node: present,
    files: [
      { path: `${MISSING}/castle.ts`, follow: true, identity: present },
      { path: `${MISSING}/lib`, follow: false, identity: { kind: "absent" } },
    ],
    env: [["HOME", "/root"], ["CASTLE_TEST_UNSET", undefined]],
    envPrefixes: ["CASTLE_", "NODE_", "LC_"],
    cwd: MISSING,
    generation: { file: `${MISSING}/prune-generation`, value: 4 },
    trees: [`${MISSING}/trees/a`, `${MISSING}/trees/b`],
    root: { file: `${MISSING}/roots/s.json`, prefix: '{"system":"s","usedAt":"', suffix: '","keys":[],"digests":[]}\n' },
    pin: { dir: `${MISSING}/pins`, tmp: `${MISSING}/tmp`, tail: '"keys":["k"],"digests":["d"]}\n' },
    slot: `${MISSING}/slots/s`,
    upper: { upper: `${MISSING}/upper`, work: `${MISSING}/work`, nested: `${MISSING}/castle-store` },
    mkdirs: [`${MISSING}/src`],
    exists: [{ path: `${MISSING}/upper/srv`, follow: true, exists: false }],
    helper: `${MISSING}/castle-sandbox`,
    signals: { forward: ["SIGTERM", "SIGHUP"], ignore: ["SIGINT"] },
    instance: { dir: `${MISSING}/instances`, system: "s", fields: '"system":"s","command":["/bin/true"]' },
    errors: [125, 126, 127].map((status) => ({ status, exit: status, prefix: `castle: ${status}: `, suffix: "\n", withMessage: status === 125 })),
    spec: Buffer.from(["castle-sandbox-spec/1", "argv", "1", "/bin/true", "lower", "/x", ""].join("\u0000")),
  };
}

function mutate(bytes: Buffer, rng: () => number): Buffer {
  const out = Buffer.from(bytes);
  const at = Math.floor(rng() * bytes.length);
  switch (Math.floor(rng() * 7)) {
    case 0:
      return out.subarray(0, at); // cut short
    case 1:
      out[at] = out[at]! ^ (1 << Math.floor(rng() * 8)); // a bit flipped
      return out;
    case 2:
      out[at] = 0; // a stray NUL
      return out;
    case 3: {
      // a NUL removed: two strings become one
      const nul = out.indexOf(0, at);
      return nul < 0 ? out : Buffer.concat([out.subarray(0, nul), out.subarray(nul + 1)]);
    }
    case 4:
      return Buffer.concat([out.subarray(0, at), Buffer.from(`${["bogus", "spec", "key", "error", "tree"][Math.floor(rng() * 5)]}\u0000999999999999\u0000`), out.subarray(at)]);
    case 5:
      return Buffer.concat([out, Buffer.from(Array.from({ length: 1 + Math.floor(rng() * 64) }, () => Math.floor(rng() * 256)))]);
    default:
      return Buffer.from(Array.from({ length: Math.floor(rng() * 512) }, () => Math.floor(rng() * 256)));
  }
}

function runLauncher(launcher: string, store: string, dir: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(launcher, ["run", dir, "--", "/bin/true"], {
      cwd: "/",
      env: { PATH: "/nonexistent-castle-bin", CASTLE_CACHE_DIR: store, CASTLE_FASTPATH_DEBUG: "1", HOME: "/root", ASAN_OPTIONS: "detect_leaks=0" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stderr });
    });
  });
}

function asanMissing(): string | undefined {
  try {
    execFileSync("make", ["-s", "-C", LAUNCHER_DIR, "asan"], { stdio: "pipe" });
  } catch (error) {
    return `cannot build castle-asan (gcc with ASan and UBSan): ${(error as Error).message.split("\n")[0]}`;
  }
  return existsSync(join(LAUNCHER_DIR, "castle-asan")) ? undefined : "castle-asan was not built";
}

const skip = process.platform !== "linux" ? "Linux only" : asanMissing();
if (skip) console.warn(`skipping fastpath-entry-fuzz: ${skip}`);

describe.skipIf(skip)("the launcher reading damaged fast-path entries", () => {
  let base: string;
  let store: string;
  const dir = `${MISSING}/def`;
  let entryFile: string;
  const launcher = join(LAUNCHER_DIR, "castle-asan");

  beforeAll(() => {
    base = mkdtempSync(join(tmpdir(), "castle-fastpath-fuzz-"));
    store = join(base, "store");
    mkdirSync(join(store, "fastpath"), { recursive: true });
    entryFile = join(store, "fastpath", entryName({ dir, arg: dir, tty: false, command: ["/bin/true"] }));
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  const expectFallThrough = (r: { code: number | null; signal: NodeJS.Signals | null; stderr: string }, label: string) => {
    expect(r.signal, `${label}: ${r.stderr}`).toBeNull();
    expect(r.stderr, label).not.toMatch(/AddressSanitizer|runtime error|LeakSanitizer/);
    expect(r.stderr, label).toMatch(/^castle: fast path: not taken: [^\n]+\ncastle: cannot find node to run Castle \(put Node 20 on PATH\)\n$/);
    expect(r.code, label).toBe(1);
  };

  it("falls through on the intact entry because the world differs, and on a missing one", async () => {
    let r = await runLauncher(launcher, store, dir);
    expectFallThrough(r, "no entry");
    expect(r.stderr).toContain("not taken: no entry for this command");
    writeFileSync(entryFile, serializeEntry(validEntry(dir)));
    r = await runLauncher(launcher, store, dir);
    expectFallThrough(r, "intact");
    // HOME matches; the store's own variable was not there when the entry was made.
    expect(r.stderr).toContain("not taken: $CASTLE_CACHE_DIR is new");
  });

  it(`falls through cleanly on ${CASES} damaged entries`, async () => {
    const valid = serializeEntry(validEntry(dir));
    const seed = Number(process.env.CASTLE_FUZZ_SEED ?? 18);
    const rng = prng(seed);
    const cases = Array.from({ length: CASES }, () => mutate(valid, rng));
    // One store per worker: each case's entry is written just before its launcher runs.
    for (let i = 0; i < cases.length; i += CONCURRENCY) {
      const batch = cases.slice(i, i + CONCURRENCY);
      const results = await Promise.all(
        batch.map(async (bytes, j) => {
          const own = join(base, `store-${j}`);
          mkdirSync(join(own, "fastpath"), { recursive: true });
          writeFileSync(join(own, "fastpath", entryName({ dir, arg: dir, tty: false, command: ["/bin/true"] })), bytes);
          return runLauncher(launcher, own, dir);
        }),
      );
      results.forEach((r, j) => expectFallThrough(r, `seed ${seed}, case ${i + j}`));
    }
  });
});
