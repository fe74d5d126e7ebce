// Tests the deferred reporter (cli/src/context/deferred-reporter.ts): a run that only finds
// cached layers never creates the real reporter; the first event that means work creates it and
// replays everything held, in order.

import { describe, expect, it } from "vitest";
import type { BuildEvent } from "@castle/graph";
import { deferredReporter } from "../src/context/deferred-reporter";
import type { Reporter } from "../src/ui/reporter";
import { keyRecord, queued } from "./helpers/ui-scripted-build";

function recording(): { created: number; events: BuildEvent[]; closed: number; create: () => Promise<Reporter> } {
  const log = { created: 0, events: [] as BuildEvent[], closed: 0, create: async (): Promise<Reporter> => {
    log.created++;
    return { onEvent: (event) => void log.events.push(event), close: async () => void log.closed++ };
  } };
  return log;
}

const stats = { layers: 1, built: 0, pulled: 0, cached: 1, failed: 0, pushedBytes: 0, pulledBytes: 0, wallMs: 1, savedMs: 0 };

describe("deferredReporter", () => {
  it("never creates the real reporter for a run that finds everything cached", async () => {
    const log = recording();
    const reporter = deferredReporter(log.create);
    reporter.onEvent({ type: "started", jobs: 2 });
    reporter.onEvent(queued("a"));
    reporter.onEvent({ type: "cache-hit", layer: "a", key: "k", digest: "d" });
    reporter.onEvent({ type: "done", layer: "a", key: "k", record: keyRecord("a", 1, 1), origin: "local" });
    reporter.onEvent({ type: "finished", ok: true, stats });
    await reporter.close();
    expect(log).toMatchObject({ created: 0, closed: 0, events: [] });
  });

  it("creates it once on the first event that means work, and replays what it held in order", async () => {
    const log = recording();
    const reporter = deferredReporter(log.create);
    const building: BuildEvent = { type: "building", layer: "b", key: "k", reason: { kind: "new", changes: [] }, logPath: "/l", jobs: 1 };
    const events: BuildEvent[] = [{ type: "started", jobs: 2 }, queued("a"), queued("b"), building, { type: "log", layer: "b", line: "x" }];
    for (const event of events) reporter.onEvent(event);
    await reporter.close();
    expect(log.created).toBe(1);
    expect(log.closed).toBe(1);
    expect(log.events).toEqual(events);
  });

  it("creates it after the grace period when the run lasts without work, and never without one", async () => {
    const log = recording();
    const reporter = deferredReporter(log.create, { graceMs: 50 });
    reporter.onEvent({ type: "started", jobs: 2 });
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(log.created).toBe(1);
    expect(log.events).toEqual([{ type: "started", jobs: 2 }]);
    await reporter.close();
    const plain = recording();
    const never = deferredReporter(plain.create, { graceMs: Infinity });
    never.onEvent({ type: "started", jobs: 2 });
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(plain.created).toBe(0);
    await never.close();
  });

  it("warms up what the reporter needs after a while, unless closed first", async () => {
    let warmed = 0;
    const quick = deferredReporter(recording().create, { warmUp: () => warmed++, warmUpMs: 50, graceMs: Infinity });
    await quick.close();
    const slow = deferredReporter(recording().create, { warmUp: () => warmed++, warmUpMs: 50, graceMs: Infinity });
    await new Promise((resolve) => setTimeout(resolve, 150));
    await slow.close();
    expect(warmed).toBe(1);
  });
});
