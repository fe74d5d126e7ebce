// enter: running a command inside a running sandbox (`castle exec`). The entered command must
// share every namespace of the sandbox (hostname, files, processes, network), get the same
// hardening as a sandbox's own command, report exit codes like spawn, refuse targets that are
// not the caller's sandboxes with CASTLE_SANDBOX_ENTER, and die with the sandbox. Each test runs
// as this process and as uid 65534; a tty session under a real pty checks job control.

import { execFileSync, spawn as spawnChild } from "node:child_process";
import { readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { text } from "node:stream/consumers";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enter, spawn, type EnterSpec, type SandboxProcess } from "../src/index";
import { CALLERS, busyboxMissing, callerMissing, cleanup, makeRootfs, tempDir, type Caller, gone, sleep } from "./fixtures";

const skipAll = busyboxMissing();
const KINDS = ["user", "mnt", "pid", "uts", "ipc", "net", "cgroup"];

describe.skipIf(skipAll)("enter", () => {
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
    let box: SandboxProcess | undefined;
    let initPid = -1;

    /** A long-running sandbox: a file in /tmp, a listener on its loopback, then sleep as pid 2. */
    const start = async (argv = ["/bin/sh", "-c", "echo first > /tmp/from-first; sleep 1000 | nc -l -p 7777 > /tmp/net & exec sleep 1000"]) => {
      const child = spawn({ root: { lowers: [rootfs] }, argv, hostname: `box-${caller.uid}` }, { ...opts, stdio: "ignore" });
      return { child, initPid: (await child.started).initPid };
    };
    const run = async (spec: EnterSpec, target = initPid) => {
      const child = enter({ initPid: target }, spec, { ...opts, stdio: ["ignore", "pipe", "pipe"] });
      const [stdout, stderr, exit] = await Promise.all([text(child.stdout as Readable), text(child.stderr as Readable), child.wait()]);
      return { ...exit, stdout, stderr, started: await child.started };
    };
    const sh = (script: string, extra: Partial<EnterSpec> = {}) => run({ argv: ["/bin/sh", "-c", script], ...extra });

    beforeAll(async () => {
      if (missing) return;
      ({ child: box, initPid } = await start());
      for (let i = 0; i < 100 && (await sh("test -e /tmp/from-first")).code !== 0; i++) await sleep(20);
    });
    afterAll(async () => {
      box?.kill("SIGKILL");
      await box?.wait().catch(() => {});
    });

    it.skipIf(missing)("sees the sandbox's hostname, files and processes", async () => {
      const r = await sh("hostname; cat /tmp/from-first; echo second > /tmp/from-second; tr '\\0' ' ' < /proc/2/cmdline; echo; echo $$");
      expect(r.code).toBe(0);
      const [hostname, file, sleeper, pid] = r.stdout.split("\n");
      expect(hostname).toBe(`box-${caller.uid}`);
      expect(file).toBe("first");
      expect(sleeper).toBe("sleep 1000 ");
      expect(Number(pid)).toBeGreaterThan(2); // a pid of the sandbox's pid namespace
      // A second command sees what the first wrote; the started line gave the host pid.
      expect((await sh("cat /tmp/from-second")).stdout).toBe("second\n");
      expect(r.started.initPid).toBe(initPid);
      expect(r.started.pid).toBeGreaterThan(1);
    });

    it.skipIf(missing)("is in every namespace of the sandbox, none of ours", async () => {
      const script = KINDS.map((k) => `a=$(readlink /proc/self/ns/${k}); b=$(readlink /proc/1/ns/${k} 2>/dev/null || readlink /proc/2/ns/${k}); echo ${k} $a $b`).join("; ");
      const r = await sh(script);
      expect(r.code).toBe(0);
      for (const line of r.stdout.trim().split("\n")) {
        const [kind, mine, theirs] = line.split(" ");
        expect(mine, kind).toBe(theirs);
        expect(mine, kind).not.toBe(readlinkSync(`/proc/self/ns/${kind}`));
      }
    });

    it.skipIf(missing)("shares the sandbox's loopback network", async () => {
      // The sandbox's own listener shows in our netstat (same namespace); then talk to it.
      for (let i = 0; i < 100 && !(await sh("netstat -ltn")).stdout.includes(":7777"); i++) await sleep(20);
      const r = await sh("echo over-the-loopback | nc 127.0.0.1 7777; ip -o link | wc -l");
      expect(r.stdout.trim()).toBe("1"); // only lo
      for (let i = 0; i < 50; i++) {
        if ((await sh("cat /tmp/net")).stdout === "over-the-loopback\n") return;
        await sleep(20);
      }
      throw new Error("the sandbox's listener never received the line");
    });

    it.skipIf(missing)('enters a network: "host" sandbox, keeping the host network it shares', async () => {
      const child = spawn({ root: { lowers: [rootfs] }, argv: ["/bin/sleep", "1000"], network: "host" }, { ...opts, stdio: "ignore" });
      try {
        const { initPid: hostNet } = await child.started;
        const r = await run({ argv: ["/bin/sh", "-c", "readlink /proc/self/ns/net; readlink /proc/self/ns/uts"] }, hostNet);
        const [net, uts] = r.stdout.trim().split("\n");
        expect(net).toBe(readlinkSync("/proc/self/ns/net"));
        expect(uts).not.toBe(readlinkSync("/proc/self/ns/uts"));
      } finally {
        child.kill("SIGKILL");
        await child.wait().catch(() => {});
      }
    });

    it.skipIf(missing)("shows up in the sandbox's ps while it runs", async () => {
      const child = enter({ initPid }, { argv: ["/bin/sleep", "555"] }, { ...opts, stdio: "ignore" });
      const { pid } = await child.started;
      const ps = await sh("ps -o pid,args");
      expect(ps.stdout).toMatch(/^\s*\d+\s+\/bin\/sleep 555$/m);
      expect(readFileSync(`/proc/${pid}/cmdline`, "utf8")).toBe("/bin/sleep\x00555\x00");
      child.kill("SIGTERM"); // forwarded to the command
      expect(await child.wait()).toEqual({ code: 143, signal: "SIGTERM" });
    });

    it.skipIf(missing)("gets a sandbox command's hardening", async () => {
      const r = await sh("grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status; ls /proc/$$/fd; cut -d' ' -f1,6 /proc/$$/stat");
      const lines = r.stdout.trim().split("\n");
      // Docker's default set (see the README), the same as a sandbox's own command.
      expect(lines.slice(0, 7)).toEqual([
        "CapInh:\t0000000000000000", "CapPrm:\t00000000a80425fb", "CapEff:\t00000000a80425fb",
        "CapBnd:\t00000000a80425fb", "CapAmb:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2",
      ]);
      expect(lines.slice(7, 10)).toEqual(["0", "1", "2"]);
      const [pid, session] = (lines[10] ?? "").split(" ");
      expect(session).toBe(pid); // a session of its own
    });

    it.skipIf(missing)("passes env, cwd and rlimits, and reports exit codes like spawn", async () => {
      const r = await run({ argv: ["/bin/sh", "-c", "echo $ONE; pwd; ulimit -n; exit 7"], env: { PATH: "/bin", ONE: "1" }, cwd: "/etc", rlimits: { nofile: 40 } });
      expect(r).toMatchObject({ code: 7, stdout: "1\n/etc\n40\n" });
      expect(await sh("kill -9 $$")).toMatchObject({ code: 137, signal: "SIGKILL" });
      await expect(run({ argv: ["no-such-command"] })).rejects.toMatchObject({ code: "CASTLE_SANDBOX_NOT_FOUND", data: { exitCode: 127 } });
      await expect(run({ argv: ["/etc/passwd"] })).rejects.toMatchObject({ code: "CASTLE_SANDBOX_NOT_EXECUTABLE", data: { exitCode: 126 } });
      await expect(run({ argv: ["/bin/true"], uid: 1000 })).rejects.toMatchObject({ code: "CASTLE_SANDBOX_SETUP" });
    });

    it.skipIf(missing)("gives a pty from the sandbox's own /dev/pts with tty: true", async () => {
      const r = await sh("tty; test -t 0 && test -t 1 && echo both-ttys; ls -1 /dev/pts", { tty: true });
      const [name, ttys, ...pts] = r.stdout.replace(/\r/g, "").trim().split("\n");
      expect(name).toMatch(/^\/dev\/pts\/\d+$/);
      expect(ttys).toBe("both-ttys");
      expect(pts).toContain(name?.slice("/dev/pts/".length));
    });

    it.skipIf(missing)("refuses a dead pid, a pid that is not a sandbox, and bad targets", async () => {
      const done = await start(["/bin/true"]);
      await done.child.wait();
      await expect(run({ argv: ["/bin/true"] }, done.initPid)).rejects.toMatchObject({ code: "CASTLE_SANDBOX_ENTER", data: { reason: "no-such-process" } });
      for (const pid of [1, process.pid, done.child.pid]) {
        const error = await run({ argv: ["/bin/true"] }, pid).catch((e: unknown) => e);
        expect(error, `pid ${pid}`).toMatchObject({ code: "CASTLE_SANDBOX_ENTER", data: { reason: expect.stringMatching(/^(not-a-sandbox|no-such-process)$/) } });
        expect((error as Error).message).toMatch(/cannot enter the sandbox: enter \d+: (not a sandbox|no such process)/);
      }
      // A process that is pid 1 of a pid namespace of ours, but not castle-sandbox.
      const other = spawnChild("unshare", ["--user", "--pid", "--fork", "sleep", "30"], { stdio: "ignore", ...(caller.asUser ?? {}) });
      try {
        let inner = -1;
        for (let i = 0; i < 100 && inner < 0; i++, await sleep(20)) {
          const kids = readFileSync(`/proc/${other.pid}/task/${other.pid}/children`, "utf8").trim();
          if (kids) inner = Number(kids);
        }
        const error = await run({ argv: ["/bin/true"] }, inner).catch((e: unknown) => e);
        expect(error).toMatchObject({ code: "CASTLE_SANDBOX_ENTER", data: { reason: "not-a-sandbox" } });
        expect((error as Error).message).toContain('it runs "sleep", not castle-sandbox');
      } finally {
        other.kill("SIGKILL");
      }
      expect(() => enter({ initPid: 0 }, { argv: ["/bin/true"] })).toThrow(expect.objectContaining({ code: "CASTLE_SANDBOX_SPEC" }));
    });

    // Only a caller other than the sandbox's owner can be refused: this one is for uid 65534.
    if (caller.asUser) it.skipIf(missing)("refuses another user's sandbox with permission-denied", async () => {
      // Root's sandbox, entered as uid 65534.
      const rootBox = spawn({ root: { lowers: [rootfs] }, argv: ["/bin/sleep", "1000"] }, { stdio: "ignore" });
      try {
        const { initPid: rootInit } = await rootBox.started;
        const error = await run({ argv: ["/bin/true"] }, rootInit).catch((e: unknown) => e);
        expect(error).toMatchObject({ code: "CASTLE_SANDBOX_ENTER", data: { reason: "permission-denied" } });
        // And uid 65534's sandbox, entered as root.
        const r = enter({ initPid }, { argv: ["/bin/true"] }, { stdio: "ignore" });
        await expect(r.wait()).rejects.toMatchObject({ code: "CASTLE_SANDBOX_ENTER", data: { reason: "permission-denied" } });
      } finally {
        rootBox.kill("SIGKILL");
        await rootBox.wait().catch(() => {});
      }
    });

    it.skipIf(missing)("dies when the sandbox's init dies, and with its caller", async () => {
      const own = await start(["/bin/sleep", "1000"]);
      const child = enter({ initPid: own.initPid }, { argv: ["/bin/sh", "-c", "sleep 1000 & exec sleep 1001"] }, { ...opts, stdio: "ignore" });
      const { pid } = await child.started;
      own.child.kill("SIGKILL");
      expect(await child.wait()).toEqual({ code: 137, signal: "SIGKILL" });
      expect(await gone(pid)).toBe(true);
      await own.child.wait();
      // Aborting (as a dying caller does) kills the entered command, not the sandbox.
      const controller = new AbortController();
      const aborted = enter({ initPid }, { argv: ["/bin/sleep", "1000"] }, { ...opts, stdio: "ignore", signal: controller.signal });
      const { pid: abortedPid } = await aborted.started;
      controller.abort();
      await expect(aborted.wait()).rejects.toMatchObject({ code: "CASTLE_CANCELLED" });
      expect(await gone(abortedPid)).toBe(true);
      expect((await sh("echo still-up")).stdout).toBe("still-up\n");
    });

    it.skipIf(missing)("runs an interactive shell with job control under a real terminal", async (ctx) => {
      try {
        execFileSync("script", ["--version"], { stdio: "ignore" });
      } catch {
        console.warn("skipped: `script` (util-linux) is not installed");
        ctx.skip();
      }
      const index = fileURLToPath(new URL("../src/index.ts", import.meta.url));
      const driver = join(base, `enter-tty-${caller.uid}.mts`);
      writeFileSync(
        driver,
        `import { enter } from ${JSON.stringify(index)};\n` +
          `const child = enter({ initPid: ${initPid} }, { argv: ["/bin/sh"], tty: true, env: { PATH: "/bin", PS1: "in$ ", TERM: "dumb" } },` +
          ` { stdio: "inherit"${caller.asUser ? `, asUser: ${JSON.stringify(caller.asUser)}` : ""} });\n` +
          `process.exit((await child.wait()).code);\n`,
      );
      const proc = spawnChild("script", ["-qfec", `${JSON.stringify(process.execPath)} --import tsx ${driver}; echo DRIVER-EXIT=$?`, "/dev/null"], {
        cwd: fileURLToPath(new URL("..", import.meta.url)),
        env: { ...process.env, TERM: "dumb" },
      });
      let output = "";
      proc.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
      const expectOut = async (pattern: RegExp, from: number): Promise<number> => {
        for (let waited = 0; waited < 15_000; waited += 20) {
          const match = pattern.exec(output.slice(from));
          if (match) return from + match.index + match[0].length;
          await sleep(20);
        }
        throw new Error(`timed out waiting for ${pattern} in:\n${output}`);
      };
      try {
        let at = await expectOut(/in\$ /, 0);
        proc.stdin.write("sleep 100 &\n");
        at = await expectOut(/in\$ /, at);
        proc.stdin.write("jobs; hostname\n");
        at = await expectOut(new RegExp(`Running\\s+sleep 100[\\s\\S]*box-${caller.uid}`), at);
        proc.stdin.write("sleep 100\n");
        await sleep(300);
        proc.stdin.write("\x03"); // ^C from the sandbox pty's line discipline; the shell survives
        at = await expectOut(/in\$ /, at);
        proc.stdin.write("echo alive-$((40+2)); exit 5\n");
        at = await expectOut(/alive-42/, at);
        await expectOut(/DRIVER-EXIT=5/, at);
      } finally {
        proc.kill("SIGKILL");
      }
    }, 30_000);
  });
});
