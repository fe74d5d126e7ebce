// tty mode under a real pseudo-terminal: `script` gives a node process a terminal, the node
// process runs `sh` with `tty: true, stdio: "inherit"`, and the test types into it. Job control
// must work (background jobs, ^C interrupts the foreground job and the shell survives), and the
// caller's terminal mode must be the same after the sandbox exits as before.

import { spawn as spawnChild, execFileSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CALLERS, busyboxMissing, callerMissing, cleanup, makeRootfs, tempDir, type Caller } from "./fixtures";

function scriptMissing(): string | undefined {
  try {
    execFileSync("script", ["--version"], { stdio: "ignore" });
    return undefined;
  } catch {
    return "`script` (util-linux) is not installed";
  }
}

class Terminal {
  output = "";
  constructor(readonly proc: ChildProcessWithoutNullStreams) {
    proc.stdout.on("data", (chunk: Buffer) => (this.output += chunk.toString("utf8")));
  }
  type(text: string): void {
    this.proc.stdin.write(text);
  }
  /** Waits until the output after `from` matches. */
  async expect(pattern: RegExp, from = 0, ms = 10_000): Promise<number> {
    for (let waited = 0; waited < ms; waited += 20) {
      const match = pattern.exec(this.output.slice(from));
      if (match) return from + match.index + match[0].length;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`timed out waiting for ${pattern} in:\n${this.output}`);
  }
}

const skipAll = busyboxMissing() ?? scriptMissing();

describe.skipIf(skipAll)("tty mode", () => {
  let base: string;
  let rootfs: string;
  beforeAll(() => {
    base = tempDir();
    rootfs = makeRootfs(base);
  });
  afterAll(cleanup);

  it.each(CALLERS)("gives a shell job control and restores the terminal (as $name)", async (caller: Caller) => {
    const missing = callerMissing(caller);
    if (missing) {
      console.warn(`skipped: ${missing}`);
      return;
    }
    const index = fileURLToPath(new URL("../src/index.ts", import.meta.url));
    const driver = join(base, `tty-driver-${caller.uid}.mts`);
    writeFileSync(
      driver,
      `import { spawn } from ${JSON.stringify(index)};\n` +
        `const child = spawn({ root: { lowers: [${JSON.stringify(rootfs)}] }, argv: ["/bin/sh"], tty: true,` +
        ` env: { PATH: "/bin", PS1: "sb$ ", TERM: "dumb" } }, { stdio: "inherit"` +
        `${caller.asUser ? `, asUser: ${JSON.stringify(caller.asUser)}` : ""} });\n` +
        `const exit = await child.wait();\nprocess.exit(exit.code);\n`,
    );
    const before = join(base, `stty-before-${caller.uid}`);
    const after = join(base, `stty-after-${caller.uid}`);
    const command =
      `stty -g > ${before}; ${JSON.stringify(process.execPath)} --import tsx ${driver}; ` +
      `echo DRIVER-EXIT=$?; stty -g > ${after}`;
    const proc = spawnChild("script", ["-qfec", command, "/dev/null"], {
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      env: { ...process.env, TERM: "dumb" },
    });
    // Listen for close now: the process may be gone before the test looks for its last line.
    const closed = new Promise((resolve) => proc.on("close", resolve));
    const term = new Terminal(proc);
    try {
      let at = await term.expect(/sb\$ /);
      term.type("sleep 100 &\n");
      at = await term.expect(/sb\$ /, at);
      term.type("jobs\n");
      at = await term.expect(/\[1\]\+?\s+Running\s+sleep 100/, at);
      at = await term.expect(/sb\$ /, at);
      term.type("sleep 100\n");
      await new Promise((resolve) => setTimeout(resolve, 300));
      term.type("\x03"); // ^C: SIGINT from the inner pty's line discipline to the foreground job
      at = await term.expect(/sb\$ /, at);
      term.type("echo alive-$((40+2))\n");
      at = await term.expect(/alive-42/, at);
      term.type("exit\n");
      await term.expect(/DRIVER-EXIT=0/, at);
      await closed;
    } finally {
      proc.kill("SIGKILL");
    }
    expect(readFileSync(before, "utf8")).toMatch(/^[0-9a-f:]+\n$/);
    expect(readFileSync(after, "utf8")).toBe(readFileSync(before, "utf8"));
  }, 30_000);
});
