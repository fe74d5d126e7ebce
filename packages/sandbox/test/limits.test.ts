// The sandbox's limits (limits.ts, cgroups.ts): where Castle may create cgroups (as root on this
// machine's cgroup v1 hierarchies; for a helper run as uid 65534 the dirs are handed to it) a
// fork loop stops at `pids`, a hungry process is killed at `memory`, and the exit says which
// limit was hit; /tmp is as large as asked; RLIMIT_NPROC standing in is seen as hit too; the
// cgroups are gone afterwards, with those a killed Castle left. Words of the one-line warning.

import { existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyLimits, describeUnenforced, formatBytes, parseSize, run, spawn, type SandboxSpec } from "../src/index";
import { sweepStale } from "../src/cgroups";
import { CALLERS, busyboxMissing, callerMissing, cleanup, makeRootfs, tempDir, type Caller } from "./fixtures";

const skipAll = busyboxMissing();
const ROOT = process.getuid?.() === 0;
/** Forks sleepers until the shell cannot (busybox sh then exits 2), printing each count. */
const FORK_LOOP = "i=0; while [ $i -lt 400 ]; do sleep 60 & i=$((i+1)); echo $i; done";

describe("limit words", () => {
  it("parses and prints sizes the way the flags take them", () => {
    expect([parseSize("512M"), parseSize("2g"), parseSize("1.5K"), parseSize("1048576"), parseSize("4GiB"), parseSize("lots")]).toEqual([
      512 * 2 ** 20, 2 * 2 ** 30, 1536, 1048576, 4 * 2 ** 30, undefined,
    ]);
    expect([formatBytes(512 * 2 ** 20), formatBytes(1536), formatBytes(1000)]).toEqual(["512M", "1.5K", "1000"]);
  });

  it("says in one line what stands in for each limit no cgroup holds, and why", () => {
    const why = "/sys/fs/cgroup/pids is not writable by uid 1000";
    expect(describeUnenforced([
      { limit: "pids", value: 64, standIn: "RLIMIT_NPROC", why },
      { limit: "memory", value: 2 ** 29, standIn: "RLIMIT_AS", why },
      { limit: "cpus", value: 0.5, why },
    ], { pids: "--pids", memory: "--memory", cpus: "--cpus" })).toBe(
      "--pids 64 holds only as RLIMIT_NPROC, --memory 512M only as RLIMIT_AS (address space per process, not a total), --cpus 0.5 not at all: " +
        `no cgroup for them here (${why})`,
    );
    expect(describeUnenforced([])).toBeUndefined();
  });
});

describe.skipIf(skipAll)("limits of a whole sandbox", () => {
  let base: string;
  let rootfs: string;
  beforeAll(() => {
    base = tempDir();
    rootfs = makeRootfs(base);
  });
  afterAll(cleanup);

  describe.each(CALLERS)("as $name", (caller: Caller) => {
    const missing = callerMissing(caller);
    const opts = caller.asUser ? { asUser: caller.asUser } : {};
    const sh = (script: string, extra: Partial<SandboxSpec> = {}) =>
      run({ root: { lowers: [rootfs] }, argv: ["/bin/sh", "-c", script], ...extra }, opts);

    it.skipIf(missing)("gives /tmp the size asked, and says when a failed command left it full", async () => {
      const r = await sh("df -k /tmp | tail -1 | tr -s ' ' | cut -d' ' -f2; dd if=/dev/zero of=/tmp/fill bs=64k 2>/dev/null; echo filled", { limits: { tmpBytes: 4 * 2 ** 20 } });
      expect(r.stdout).toBe("4096\nfilled\n");
      expect(r.code).toBe(0); // it went on: full, but no failure to explain
      const failed = await sh("dd if=/dev/zero of=/tmp/fill bs=64k", { limits: { tmpBytes: 4 * 2 ** 20 } });
      expect(failed.code).not.toBe(0);
      expect(failed.limitHit).toEqual({ limit: "tmp", value: 4 * 2 ** 20 });
    });

    it.skipIf(missing)("sees a failed command that ran into RLIMIT_NPROC (no counter: init counts the tasks left)", async () => {
      const r = await sh(FORK_LOOP, { rlimits: { nproc: 48 } });
      expect(r.code).toBe(2);
      expect(Number(r.stdout.trim().split("\n").pop())).toBeLessThan(48);
      expect(r.limitHit).toEqual({ limit: "pids" });
      // A failure with few tasks left is not blamed on the limit.
      expect((await sh("exit 3", { rlimits: { nproc: 48 } })).limitHit).toBeUndefined();
    });

    it.skipIf(missing || !ROOT)("holds pids and memory in cgroups of its own, and says which was hit", async () => {
      const forks = await sh(FORK_LOOP, { limits: { pids: 40 } });
      expect(forks.code).toBe(2);
      expect(Number(forks.stdout.trim().split("\n").pop())).toBeLessThan(40);
      expect(forks.limitHit).toEqual({ limit: "pids", value: 40 });
      // busybox awk builds a 256 MB string; the memory cgroup kills it at 64 MB.
      const hungry = await sh("awk 'BEGIN { s = sprintf(\"%268435456s\", \"\"); print length(s) }'", { limits: { memoryBytes: 64 * 2 ** 20 } });
      expect(hungry.code).toBe(137);
      expect(hungry.limitHit).toEqual({ limit: "memory", value: 64 * 2 ** 20 });
    });

    it.skipIf(missing || !ROOT)("puts the sandbox in its cgroups (its namespace's root) and removes them after", async () => {
      const child = spawn(
        { root: { lowers: [rootfs] }, argv: ["/bin/sh", "-c", "cat /proc/self/cgroup"], limits: { pids: 100, memoryBytes: 2 ** 30, cpus: 0.5 } },
        { ...opts, stdio: ["ignore", "pipe", "ignore"] },
      );
      let out = "";
      child.stdout?.on("data", (d: Buffer) => (out += d));
      expect(child.limits?.unenforced).toEqual([]);
      const dirs = child.limits!.cgroups;
      expect(dirs.length).toBeGreaterThan(0);
      for (const dir of dirs) expect(dir).toMatch(new RegExp(`/castle-${process.pid}-\\d+$`));
      expect((await child.wait()).code).toBe(0);
      // Inside, every hierarchy's path is "/": the sandbox sees no cgroup above its own.
      for (const line of out.trim().split("\n")) expect(line).toMatch(/:\/$/);
      for (const dir of dirs) expect(existsSync(dir)).toBe(false);
    });
  });

  it.skipIf(!ROOT)("removes the cgroups a killed Castle left, and only those", async () => {
    const made = applyLimits({ root: { lowers: ["/"] }, argv: ["/bin/true"], limits: { pids: 10 } });
    const parent = dirname(made.cgroups[0]!);
    const stale = join(parent, "castle-999999999-0"); // a pid that cannot exist: a Castle killed with -9
    mkdirSync(stale);
    sweepStale(parent);
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(made.cgroups[0]!)).toBe(true); // ours (a live pid) stays until released
    await made.release();
    expect(existsSync(made.cgroups[0]!)).toBe(false);
  });
});
