// Tests for castle-treeutil's helper (castle-treeutil serve) and its client: running programs
// with captured output, stdin from arguments, stdout to a fifo; kills; syncfs; the fallback when
// it is turned off; and that it never keeps a Node process alive.

import { spawnSync } from "node:child_process";
import { closeSync, constants, openSync, readFileSync, readSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { treeutilPath } from "../src/index";
import { treeutilServer } from "../src/store/treeutil-serve";
import { tempDir } from "./helpers/trees";

async function server() {
  const found = await treeutilServer();
  if (!found) throw new Error("castle-treeutil serve did not start");
  return found;
}

describe("castle-treeutil serve", () => {
  it("runs a program with stdin from arguments and captures stdout, stderr and the exit code", async () => {
    const helper = await server();
    const cat = await helper.run({ argv: ["/bin/cat"], stdin: { input: ["a", "b"] }, stdout: "capture" });
    expect(cat.pid).toBeGreaterThan(0);
    const done = await cat.done;
    expect(done).toMatchObject({ code: 0, signal: 0 });
    expect(done.stdout.toString()).toBe("a\0b\0");
    const failing = await (await helper.run({ argv: ["/bin/sh", "-c", "echo oops >&2; exit 3"] })).done;
    expect(failing).toMatchObject({ code: 3, stderr: "oops\n" });
  });

  it("refuses what cannot run, and kills what it started", async () => {
    const helper = await server();
    await expect(helper.run({ argv: ["/nonexistent/program"] })).rejects.toThrow(/cannot run/);
    await expect(helper.run({ argv: ["relative"] })).rejects.toThrow(/bad run request/);
    const sleeper = await helper.run({ argv: ["/bin/sleep", "30"] });
    sleeper.kill();
    expect(await sleeper.done).toMatchObject({ code: -1, signal: 9 });
  });

  it("connects a program to fifos it makes, each unlinked once opened, and syncs a filesystem", async () => {
    const helper = await server();
    const fifo = await helper.fifo();
    expect(statSync(fifo).isFIFO()).toBe(true);
    expect(statSync(fifo).mode & 0o777).toBe(0o600);
    // As Castle's zstd codec does: hold the fifo open both ways first, so no open ever blocks.
    const keep = openSync(fifo, constants.O_RDWR);
    const read = openSync(fifo, constants.O_RDONLY);
    const echo = await helper.run({ argv: ["/bin/echo", "through the fifo"], stdout: { path: fifo } });
    closeSync(keep);
    const buf = Buffer.alloc(100);
    const n = readSync(read, buf);
    expect(buf.toString("utf8", 0, n)).toBe("through the fifo\n");
    expect((await echo.done).code).toBe(0);
    closeSync(read);
    const dir = tempDir();
    writeFileSync(join(dir, "f"), "x");
    await helper.syncfs(dir);
    await expect(helper.syncfs(join(dir, "missing"))).rejects.toThrow(/cannot open/);
  });

  it("is not used when CASTLE_TREEUTIL_SERVE=0", async () => {
    expect(await treeutilServer({ CASTLE_TREEUTIL_SERVE: "0" })).toBeUndefined();
  });

  it("never keeps Node alive, and goes away with it", async () => {
    const script = `
      import { treeutilServer } from ${JSON.stringify(join(import.meta.dirname, "../src/store/treeutil-serve.ts"))};
      const helper = await treeutilServer();
      await (await helper.run({ argv: ["/bin/true"] })).done;
      console.log(helper.pid);
    `;
    const started = Date.now();
    const result = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      encoding: "utf8", timeout: 20_000, env: { ...process.env, CASTLE_TREEUTIL: treeutilPath() },
    });
    expect(result.status, result.stderr).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
    const pid = Number(result.stdout.trim());
    expect(pid).toBeGreaterThan(0);
    // Its stdin closed with Node: it exits (a zombie until reaped counts as gone).
    const gone = () => {
      try {
        return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.startsWith("Z") ?? true;
      } catch {
        return true;
      }
    };
    for (let i = 0; i < 100 && !gone(); i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(gone()).toBe(true);
  });
});
