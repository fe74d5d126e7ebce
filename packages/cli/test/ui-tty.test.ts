// Tests the TTY progress path for real (cli/src/ui/ink-reporter.tsx through createReporter): the
// demo in helpers/ui-demo.ts runs under a pseudo-terminal made by util-linux `script`, and the
// captured bytes must show ink drawing (escape codes), redraws throttled despite thousands of log
// lines, the final outcome, and a clean exit. Skips with a reason when `script` is missing.

import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../../..");
const tsx = resolve(root, "node_modules/.bin/tsx");
const demo = resolve(import.meta.dirname, "helpers/ui-demo.ts");
const scriptCheck = spawnSync("script", ["--version"], { encoding: "utf8" });
const hasScript = scriptCheck.status === 0 && scriptCheck.stdout.includes("util-linux");
if (!hasScript) console.warn("skipping ui-tty tests: util-linux `script` is not available to make a pseudo-terminal");

/** Runs the demo on a pty of `size` rows × columns, or on a pty nobody sized. */
function runDemo(args: string[], size: { rows: number; columns: number } | "unsized" = { rows: 30, columns: 100 }): { status: number | null; output: string } {
  const sizing = size === "unsized" ? "" : `stty rows ${size.rows} cols ${size.columns}; `;
  const command = `${sizing}exec ${tsx} ${demo} ${args.join(" ")}`;
  const env: NodeJS.ProcessEnv = { ...process.env, TERM: "xterm-256color", FORCE_COLOR: "1" };
  delete env.CI;
  delete env.CONTINUOUS_INTEGRATION;
  const result = spawnSync("script", ["-qfec", command, "/dev/null"], { cwd: root, env, encoding: "utf8", timeout: 60_000, stdio: ["ignore", "pipe", "pipe"] });
  return { status: result.status, output: result.stdout + result.stderr };
}

/** What a terminal would finally show of a line-erasing stream, roughly: the text, escapes removed. */
function visibleText(output: string): string {
  return output.replace(/\x1b\[[0-?]*[ -/]*[@-~]/g, "").replace(/\r/g, "");
}

describe.skipIf(!hasScript)("progress on a real terminal", () => {
  it("draws live with ink, throttles redraws, prints the outcome and exits cleanly", () => {
    const { status, output } = runDemo(["--burst", "500"]);
    expect(status).toBe(0);
    expect(output).toContain("\x1b[");
    expect(output).toContain("\x1b[?25l"); // cursor hidden while drawing...
    expect(output).toContain("\x1b[?25h"); // ...and shown again at the end
    const text = visibleText(output);
    expect(text).toContain("↓ pulled zlib (5.0 MB in");
    expect(text).toContain("✔ built lua in 21.4s");
    expect(text).toMatch(/app +\d+\.\ds  make app step \d/); // a live row with its latest log line
    expect(text).toContain("cache: 3 hits, 3 misses (1 pulled from the remote, 2 built)");
    expect(text).toContain("done: 8 layers (2 built, 1 pulled, 3 cached, 1 skipped) in 4.3s");
    expect(text).toMatch(/ui-demo: closed after \d+ ms/);
    // 8,000 log lines over ~2 s, but frames come at ~12 fps: far fewer redraws than events.
    const frames = output.split("\x1b[?2026h").length - 1;
    expect(frames).toBeGreaterThan(5);
    expect(frames).toBeLessThan(80);
    // Finished layers are printed once, not redrawn.
    expect(text.split("✔ built lua in 21.4s")).toHaveLength(2);
  });

  it("ends a failed build with the failure block", () => {
    const { status, output } = runDemo(["--fail", "--burst", "10"]);
    expect(status).toBe(0);
    const text = visibleText(output);
    expect(text).toContain("✗ failed lua: build of lua failed: /bin/sh exited with status 2");
    expect(text).toContain("error: lua failed: build of lua failed: /bin/sh exited with status 2");
    expect(text).toContain("  | lua.c:32: error line 32");
    expect(text).toContain("full log: /cache/logs/key-lua.log");
    expect(text).toContain("failed: 8 layers (0 built, 1 pulled, 3 cached, 1 failed, 3 skipped) in 4.3s");
  });

  it("prints plain lines on a terminal that reports no size", () => {
    const { status, output } = runDemo(["--burst", "10"], "unsized");
    expect(status).toBe(0);
    expect(output).not.toContain("\x1b");
    expect(output).toContain("[5/8] built lua in 21.4s");
  });
});
