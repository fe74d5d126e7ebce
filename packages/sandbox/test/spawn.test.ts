// spawn/run: the life of a sandbox as the caller sees it: start, exit codes and signals, signal
// forwarding, typed errors for what could not run, abort, and the sandbox dying with its caller.

import { spawn as spawnChild } from "node:child_process";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run, spawn } from "../src/index";
import { CALLERS, busyboxMissing, callerMissing, cleanup, makeRootfs, tempDir, type Caller, gone, sleep } from "./fixtures";

const skipAll = busyboxMissing();

describe.skipIf(skipAll)("spawn and run", () => {
  let base: string;
  let rootfs: string;

  beforeAll(() => {
    base = tempDir();
    rootfs = makeRootfs(base);
    writeFileSync(join(rootfs, "etc/not-executable"), "#!/bin/sh\necho hi\n", { mode: 0o644 });
    writeFileSync(join(rootfs, "bin/exits-127"), "#!/bin/sh\nexit 127\n");
    chmodSync(join(rootfs, "bin/exits-127"), 0o755);
  });
  afterAll(cleanup);

  describe.each(CALLERS)("as $name", (caller: Caller) => {
    const missing = callerMissing(caller);
    const opts = caller.asUser ? { asUser: caller.asUser } : {};
    const root = () => ({ lowers: [rootfs] });

    it.skipIf(missing)("reports started with the host pid of init, then the exit code", async () => {
      const child = spawn({ root: root(), argv: ["/bin/sh", "-c", "exit 17"] }, { ...opts, stdio: "ignore" });
      const started = await child.started;
      expect(started.overlay).toBe("kernel");
      expect(started.initPid).toBeGreaterThan(1);
      expect(child.pid).toBeGreaterThan(1);
      expect(await child.wait()).toEqual({ code: 17 });
    });

    it.skipIf(missing)("reports a command killed by a signal as 128+signal", async () => {
      const r = await run({ root: root(), argv: ["/bin/sh", "-c", "kill -9 $$"] }, opts);
      expect(r).toMatchObject({ code: 137, signal: "SIGKILL" });
      const child = spawn({ root: root(), argv: ["/bin/sleep", "30"] }, { ...opts, stdio: "ignore" });
      const { initPid } = await child.started;
      child.kill("SIGKILL");
      expect(await child.wait()).toEqual({ code: 137, signal: "SIGKILL" });
      expect(await gone(initPid)).toBe(true);
    });

    it.skipIf(missing)("forwards SIGTERM to the command", async () => {
      const child = spawn(
        { root: root(), argv: ["/bin/sh", "-c", "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.05; done"] },
        { ...opts, stdio: ["ignore", "pipe", "pipe"] },
      );
      let out = "";
      const ready = new Promise<void>((resolve) =>
        child.stdout?.on("data", (chunk: Buffer) => {
          out += chunk;
          if (out.includes("ready")) resolve();
        }),
      );
      await ready;
      child.kill("SIGTERM");
      expect(await child.wait()).toEqual({ code: 7 });
      expect(out).toContain("got-term");
    });

    it.skipIf(missing)("tells a missing command (127) from a command that exits 127", async () => {
      await expect(run({ root: root(), argv: ["does-not-exist"] }, opts)).rejects.toMatchObject({
        code: "CASTLE_SANDBOX_NOT_FOUND",
        data: { exitCode: 127 },
      });
      await expect(run({ root: root(), argv: ["/bin/missing"] }, opts)).rejects.toMatchObject({ code: "CASTLE_SANDBOX_NOT_FOUND" });
      expect(await run({ root: root(), argv: ["exits-127"] }, opts)).toMatchObject({ code: 127 });
    });

    it.skipIf(missing)("rejects a non-executable file with 126", async () => {
      const error = await run({ root: root(), argv: ["/etc/not-executable"] }, opts).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "CASTLE_SANDBOX_NOT_EXECUTABLE", data: { exitCode: 126 } });
      expect((error as Error).message).toMatch(/Permission denied/);
    });

    it.skipIf(missing)("rejects a setup failure with CASTLE_SANDBOX_SETUP and a clear message", async () => {
      const missingRoot = join(base, "no-such-rootfs");
      const error = await run({ root: { lowers: [missingRoot] }, argv: ["/bin/true"] }, opts).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "CASTLE_SANDBOX_SETUP", data: { exitCode: 125 } });
      expect((error as Error).message).toContain(`root lower ${missingRoot}: No such file or directory`);
      const started = spawn({ root: { lowers: [missingRoot] }, argv: ["/bin/true"] }, { ...opts, stdio: "ignore" }).started;
      await expect(started).rejects.toMatchObject({ code: "CASTLE_SANDBOX_SETUP" });
    });

    it.skipIf(missing)("rejects a uid other than 0 without subordinate ids", async () => {
      const error = await run({ root: root(), argv: ["/bin/true"], uid: 1000 }, opts).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "CASTLE_SANDBOX_SETUP" });
      expect((error as Error).message).toMatch(/uid 1000 .* is not mapped/);
    });

    it.skipIf(missing)("kills the sandbox when aborted", async () => {
      const controller = new AbortController();
      const child = spawn({ root: root(), argv: ["/bin/sleep", "30"] }, { ...opts, stdio: "ignore", signal: controller.signal });
      const { initPid } = await child.started;
      controller.abort(new Error("enough"));
      await expect(child.wait()).rejects.toMatchObject({ code: "CASTLE_CANCELLED" });
      expect(await gone(initPid)).toBe(true);
    });

    it.skipIf(missing)("dies with its caller, leaving no process behind", async () => {
      // A node process starts a sandbox, prints init's pid, and is then SIGKILLed.
      const script = join(base, `caller-${caller.uid}.mts`);
      const index = fileURLToPath(new URL("../src/index.ts", import.meta.url));
      writeFileSync(
        script,
        `import { spawn } from ${JSON.stringify(index)};\n` +
          `const child = spawn({ root: { lowers: [${JSON.stringify(rootfs)}] }, argv: ["/bin/sh", "-c", "sleep 100 & sleep 100"] }` +
          `${caller.asUser ? `, { asUser: ${JSON.stringify(caller.asUser)}, stdio: "ignore" }` : `, { stdio: "ignore" }`});\n` +
          `const s = await child.started; console.log(JSON.stringify({ initPid: s.initPid, helper: child.pid }));\n` +
          `await new Promise(() => setInterval(() => {}, 1000));\n`,
      );
      const node = spawnChild(process.execPath, ["--import", "tsx", script], { stdio: ["ignore", "pipe", "inherit"], cwd: fileURLToPath(new URL("..", import.meta.url)) });
      const line = await new Promise<string>((resolve, reject) => {
        let out = "";
        node.stdout.on("data", (chunk: Buffer) => {
          out += chunk;
          if (out.includes("\n")) resolve(out);
        });
        node.on("exit", (code) => reject(new Error(`caller exited early (${code})`)));
      });
      const { initPid, helper } = JSON.parse(line) as { initPid: number; helper: number };
      const children = () => {
        try {
          return readFileSync(`/proc/${initPid}/task/${initPid}/children`, "utf8").trim().split(/\s+/);
        } catch {
          return [];
        }
      };
      const inside = children();
      expect(inside.length).toBeGreaterThan(0);
      node.kill("SIGKILL");
      expect(await gone(helper)).toBe(true);
      expect(await gone(initPid)).toBe(true);
      for (const pid of inside) expect(await gone(Number(pid))).toBe(true);
    }, 20_000);
  });

  it("rejects an invalid spec synchronously, naming the field", () => {
    expect(() => spawn({ root: { lowers: ["/r"] }, argv: [] })).toThrow(expect.objectContaining({ code: "CASTLE_SANDBOX_SPEC", data: { field: "argv" } }));
    expect(() => spawn({ root: { lowers: ["/r"] }, argv: ["/bin/true"], cwd: "relative" })).toThrow(/cwd/);
  });
});
