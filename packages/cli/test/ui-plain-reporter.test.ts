// Tests the plain-line reporter (cli/src/ui/plain-reporter.ts): the exact lines for a
// scripted build, verbose log lines, rate-limited pull lines, the failure block, no escape codes.

import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import type { BuildEvent } from "@castle/graph";
import { createPlainReporter, type PlainReporterOptions } from "../src/ui/plain-reporter";
import { queued, scriptedBuild, type TimedEvent } from "./helpers/ui-scripted-build";

/** Runs timed events through a printer and returns everything it wrote. */
function print(steps: TimedEvent[], options: PlainReporterOptions = {}): string {
  let output = "";
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      output += String(chunk);
      callback();
    },
  });
  let now = 0;
  const printer = createPlainReporter({ ...options, stream, now: () => now });
  for (const step of steps) {
    now = step.at;
    printer.onEvent(step.event);
  }
  void printer.close();
  return output;
}

const FIRST_LINES = [
  "[1/8] cached busybox",
  "[2/8] cached musl",
  "[3/8] cached gcc",
  "pulling zlib 0.0/5.0 MB",
  "pulling zlib 3.2/5.0 MB (1.6 MB/s)",
  "pulling zlib 5.0/5.0 MB (2.0 MB/s)",
  "[4/8] pulled zlib (5.0 MB in 2.5s)",
  "building lua (dependency musl: output 1a2b… → 9f8e…)",
  "building app (new)",
];

describe("plain reporter", () => {
  it("prints one line per meaningful event of a successful build, then the summary", () => {
    expect(print(scriptedBuild()).split("\n")).toEqual([
      ...FIRST_LINES,
      "warning: export of zlib to s3://bucket/c failed: timeout",
      "[5/8] built lua in 21.4s",
      "pushed lua (1.2 MB)",
      "[6/8] built app in 1.5s",
      "[7/8] ready base",
      "[8/8] skipped docs: not needed: everything that uses it is cached",
      "done: 8 layers (2 built, 1 pulled, 3 cached, 1 skipped) in 4.3s; pulled 5.0 MB, pushed 1.2 MB; the cache saved 1m00s",
      "",
    ]);
  });

  it("prints log lines only when verbose, prefixed with their layer and stripped of escape codes", () => {
    const quiet = print(scriptedBuild({ logLinesPerBuild: 2 }));
    expect(quiet).not.toContain("cc -c");
    const verbose = print(scriptedBuild({ logLinesPerBuild: 2 }), { verbose: true });
    expect(verbose).toContain("building app (new)\nlua | cc -c lua1.c\napp | make app step 1\nlua | cc -c lua2.c\napp | make app step 2\n");
    expect(verbose).not.toContain("\x1b");
  });

  it("ends a failed build with the failure block: layer, message, last 30 log lines, log path", () => {
    const lines = print(scriptedBuild({ fail: true })).split("\n");
    expect(lines.slice(0, FIRST_LINES.length)).toEqual(FIRST_LINES);
    expect(lines.slice(FIRST_LINES.length)).toEqual([
      "warning: export of zlib to s3://bucket/c failed: timeout",
      "[5/8] failed lua: build of lua failed: /bin/sh exited with status 2",
      "[6/8] skipped app: lua failed",
      "[7/8] skipped base: the build stopped",
      "[8/8] skipped docs: the build stopped",
      "error: lua failed: build of lua failed: /bin/sh exited with status 2",
      "last 30 lines of the log of lua:",
      ...Array.from({ length: 30 }, (_, i) => `  | lua.c:${i + 3}: error line ${i + 3}`),
      "full log: /cache/logs/key-lua.log",
      "failed: 8 layers (0 built, 1 pulled, 3 cached, 1 failed, 3 skipped) in 4.3s; pulled 5.0 MB; the cache saved 1m00s",
      "",
    ]);
  });

  it("prints the failure block on close when the build stopped before finishing", () => {
    const steps: TimedEvent[] = [
      { at: 0, event: queued("a") },
      { at: 5, event: { type: "failed", layer: "a", message: "sandbox setup failed\nhint: enable user namespaces", logTail: [] } },
    ];
    expect(print(steps)).toBe(
      "[1/1] failed a: sandbox setup failed\nerror: a failed: sandbox setup failed\n  hint: enable user namespaces\n",
    );
  });

  it("prints at most one pulling line per layer every 2 s, and one when the pull completes", () => {
    const pulling = (layer: string, bytesDone: number): BuildEvent => ({ type: "pulling", layer, key: "k", bytesDone, bytesTotal: 1000 });
    const steps: TimedEvent[] = [];
    for (let t = 0; t <= 4500; t += 100) {
      steps.push({ at: t, event: pulling("a", Math.min(999, t / 5)) });
      steps.push({ at: t, event: pulling("b", Math.min(999, t / 5)) });
    }
    steps.push({ at: 4600, event: pulling("a", 1000) }, { at: 4600, event: pulling("a", 1000) });
    const lines = print(steps).trimEnd().split("\n");
    expect(lines.filter((l) => l.startsWith("pulling a "))).toEqual([
      "pulling a 0.0/1.0 kB",
      "pulling a 0.4/1.0 kB (200 B/s)",
      "pulling a 0.8/1.0 kB (200 B/s)",
      "pulling a 1.0/1.0 kB (217 B/s)",
    ]);
    expect(lines.filter((l) => l.startsWith("pulling b "))).toHaveLength(3);
  });

  it("never writes an escape code, even when the build's output and messages contain them", () => {
    const steps: TimedEvent[] = [
      { at: 0, event: { type: "building", layer: "x", key: "k", logPath: "/l", jobs: 1, reason: { kind: "changed", changes: ["\x1b[1mbold\x1b[0m"] } } },
      { at: 1, event: { type: "log", layer: "x", line: "\x1b]0;title\x07progress 10%\rprogress 100%\x1b[K" } },
      { at: 2, event: { type: "warning", message: "\x1b[31mred\x1b[0m" } },
      { at: 3, event: { type: "failed", layer: "x", message: "\x1b[31mboom\x1b[0m", logTail: ["\x1b[33mwarn\x1b[0m"], logPath: "/l" } },
    ];
    const output = print(steps, { verbose: true });
    expect(output).not.toMatch(/[\x1b\x9b]/);
    expect(output).toContain("x | progress 100%\n");
    expect(output).toContain("building x (bold)\n");
  });
});
