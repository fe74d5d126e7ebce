// Tests the TTY reporter (cli/src/ui/ink-reporter.tsx) in process, on a stream that says it is a
// 30×100 terminal: events are cheap to take, frames come on a timer with each layer's latest log
// line, and close() prints the outcome once and releases the terminal.

import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import type { BuildEvent } from "@castle/graph";
import { createInkReporter } from "../src/ui/ink-reporter";
import { queued, scriptedBuild } from "./helpers/ui-scripted-build";

/** A writable that looks like a terminal to ink and keeps what it was given. */
function fakeTerminal(): { stream: Writable; output: () => string } {
  let output = "";
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      output += String(chunk);
      callback();
    },
  });
  Object.assign(stream, { isTTY: true, rows: 30, columns: 100 });
  return { stream, output: () => output };
}

// ink stops drawing live frames in CI (its is-in-ci check, made when ink loads); only <Static>
// output and the last frame are written then.
const inkInCi = ["CI", "CONTINUOUS_INTEGRATION"].some((key) => key in process.env && process.env[key] !== "0" && process.env[key] !== "false");
if (inkInCi) console.warn("skipping the live-frame test of ui-ink-reporter: CI is set, so ink draws no live frames");

const plainText = (output: string): string => output.replace(/\x1b\[[0-?]*[ -/]*[@-~]/g, "");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("createInkReporter", () => {
  it.skipIf(inkInCi)("takes a flood of log lines cheaply and shows each building layer's latest", async () => {
    const terminal = fakeTerminal();
    const progress = createInkReporter({ stream: terminal.stream, fps: 20 });
    const layers = Array.from({ length: 200 }, (_, i) => `layer-${i}`);
    for (const layer of layers) progress.onEvent(queued(layer));
    for (const layer of layers.slice(0, 4)) {
      progress.onEvent({ type: "building", layer, key: "k", logPath: "/l", jobs: 1, reason: { kind: "new", changes: [] } });
    }
    const started = performance.now();
    for (let i = 0; i < 100_000; i++) progress.onEvent({ type: "log", layer: `layer-${i % 4}`, line: `compiling unit ${i}` });
    expect(performance.now() - started).toBeLessThan(500);
    await sleep(150);
    const text = plainText(terminal.output());
    for (let i = 0; i < 4; i++) expect(text).toContain(`compiling unit ${99_996 + i}`);
    expect(text).not.toContain("compiling unit 50000");
    await progress.close();
  });

  it("folds a layer's pending log line before its next event", async () => {
    const terminal = fakeTerminal();
    const progress = createInkReporter({ stream: terminal.stream });
    const events: BuildEvent[] = [
      queued("a"),
      { type: "building", layer: "a", key: "k", logPath: "/l", jobs: 1, reason: { kind: "new", changes: [] } },
      { type: "log", layer: "a", line: "last words" },
      { type: "failed", layer: "a", message: "boom", logTail: ["last words"], logPath: "/logs/a.log" },
      { type: "finished", ok: false, stats: { layers: 1, built: 0, pulled: 0, cached: 0, failed: 1, pushedBytes: 0, pulledBytes: 0, wallMs: 10, savedMs: 0 } },
    ];
    for (const event of events) progress.onEvent(event);
    await progress.close();
    const text = plainText(terminal.output());
    expect(text).toContain("✗ failed a: boom");
    expect(text).toContain("error: a failed: boom");
    expect(text).toContain("full log: /logs/a.log");
  });

  it("prints finished layers and the outcome once, and close() can be called twice", async () => {
    const terminal = fakeTerminal();
    const progress = createInkReporter({ stream: terminal.stream });
    for (const step of scriptedBuild()) progress.onEvent(step.event);
    await sleep(200);
    await Promise.all([progress.close(), progress.close()]);
    await progress.close();
    const text = plainText(terminal.output());
    expect(text.split("✔ built lua in 21.4s")).toHaveLength(2);
    expect(text.split("done: 8 layers (2 built, 1 pulled, 3 cached, 1 skipped) in 4.3s")).toHaveLength(2);
    const length = terminal.output().length;
    progress.onEvent(queued("late"));
    await sleep(150);
    expect(terminal.output().length).toBe(length);
  });
});
