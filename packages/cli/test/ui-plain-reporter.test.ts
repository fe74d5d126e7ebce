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
      "done: 8 layers (2 built, 1 pulled, 3 cached, 1 skipped) in 4.3s; pulled 5.0 MB, pushed 1.2 MB; the cache saved about 40.0s of building",
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
      "failed: 8 layers (0 built, 1 pulled, 3 cached, 1 failed, 3 skipped) in 4.3s; pulled 5.0 MB; the cache saved about 40.0s of building",
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

  it("prints a source when it starts downloading or unpacking, every 2 s while it lasts, and once it is ready", () => {
    const source = (phase: "download" | "unpack" | "store" | "done", bytesDone: number, bytesTotal?: number) =>
      ({ type: "source", source: "debs", phase, bytesDone, bytesTotal }) as BuildEvent;
    const steps: TimedEvent[] = [{ at: 0, event: source("download", 0, 10_000_000) }];
    for (let t = 100; t <= 5000; t += 100) steps.push({ at: t, event: source("download", t * 2000, 10_000_000) });
    steps.push({ at: 5000, event: source("unpack", 0, 10_000_000) }, { at: 5100, event: source("unpack", 5_000_000, 10_000_000) });
    // Unpacking this fast is not worth a line; a slow one is shown after 2 s.
    steps.push({ at: 5200, event: source("store", 0) }, { at: 5300, event: source("done", 30_000_000, 30_000_000) });
    steps.push({ at: 5400, event: queued("a") }, { at: 5400, event: { type: "waiting", layer: "a", for: "slot" } });
    expect(print([{ at: 0, event: { type: "started", jobs: 2 } }, ...steps]).split("\n")).toEqual([
      "downloading debs 0.0/10.0 MB",
      "downloading debs 4.0/10.0 MB (2.0 MB/s)",
      "downloading debs 8.0/10.0 MB (2.0 MB/s)",
      "fetched debs (10.0 MB in 5.3s)",
      "waiting a: all 2 build slots are busy",
      "",
    ]);
  });

  it("counts the sources it fetched in the summary", () => {
    const steps: TimedEvent[] = [
      { at: 0, event: { type: "source", source: "s", phase: "download", bytesDone: 1000, bytesTotal: 1000 } },
      { at: 10, event: { type: "source", source: "s", phase: "done", bytesDone: 2000, bytesTotal: 2000 } },
      { at: 20, event: { type: "source", source: "t", phase: "copy", bytesDone: 0, bytesTotal: 500 } },
      { at: 30, event: { type: "source", source: "t", phase: "done", bytesDone: 500, bytesTotal: 500 } },
      // Local copies get no line of their own (only progress while one lasts).
      { at: 30, event: { type: "source", source: "u", phase: "copy", bytesDone: 0, bytesTotal: 500 } },
      { at: 1530, event: { type: "source", source: "u", phase: "done", bytesDone: 500, bytesTotal: 500 } },
      {
        at: 1540,
        event: { type: "finished", ok: true, stats: { layers: 0, built: 0, pulled: 0, cached: 0, failed: 0, pushedBytes: 0, pulledBytes: 0, wallMs: 1540, savedMs: 0 } },
      },
    ];
    expect(print(steps).trimEnd().split("\n")).toEqual([
      "downloading s 1.0/1.0 kB",
      "fetched s (1.0 kB in 0.0s)",
      "done: 0 layers (0 built, 0 pulled, 0 cached) in 1.5s; fetched 1 source (1.0 kB)",
    ]);
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
