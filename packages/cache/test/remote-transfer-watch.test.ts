// Tests for the floor under downloads: a transfer below the minimum rate for a window is
// abandoned with CASTLE_REMOTE_TIMEOUT saying so; one over its size's deadline too; a fast one is
// left alone; a cancellation by the caller is a cancellation, not a slow remote.

import { describe, expect, it } from "vitest";
import { DEFAULT_TRANSFER_LIMITS, TransferWatch } from "../src/remote/transfer-watch";

const context = { url: "s3://team-cache", where: "s3://team-cache", action: "downloading the blob of musl" };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Feeds the watch `rate` bytes per second until it trips or `ms` pass; resolves with elapsed ms. */
async function feed(watch: TransferWatch, rate: number, ms: number): Promise<number> {
  const started = Date.now();
  while (!watch.signal.aborted && Date.now() - started < ms) {
    await sleep(20);
    watch.progress((rate * (Date.now() - started)) / 1000);
  }
  return Date.now() - started;
}

describe("TransferWatch", () => {
  it("documents its defaults: 100 kB/s over 20 s, 60 s + 20 s per MB", () => {
    expect(DEFAULT_TRANSFER_LIMITS).toEqual({ minBytesPerSecond: 100_000, windowMs: 20_000, deadlineBaseMs: 60_000, deadlineMsPerMB: 20_000 });
  });

  it("abandons a trickle once a window has passed below the floor", async () => {
    const watch = new TransferWatch(21e6, { minBytesPerSecond: 100_000, windowMs: 400 }, context);
    const elapsed = await feed(watch, 5_000, 5_000);
    expect(watch.signal.aborted).toBe(true);
    expect(watch.cancelled).toBe(false);
    expect(watch.tripped).toMatchObject({ code: "CASTLE_REMOTE_TIMEOUT", message: expect.stringMatching(/below the floor of 100\.0 kB\/s; abandoned/) });
    expect(watch.signal.reason).toBe(watch.tripped);
    expect(elapsed).toBeGreaterThanOrEqual(400);
    expect(elapsed).toBeLessThan(2_000);
  });

  it("leaves a transfer above the floor alone", async () => {
    // 100 times the floor: only a stall of the whole window (a very busy machine) could trip it.
    const watch = new TransferWatch(21e6, { minBytesPerSecond: 100_000, windowMs: 500 }, context);
    await feed(watch, 10_000_000, 1_500);
    expect(watch.tripped).toBeUndefined();
    watch.stop();
  });

  it("abandons a transfer past the deadline its size allows", async () => {
    const watch = new TransferWatch(10e6, { minBytesPerSecond: 0, windowMs: 100, deadlineBaseMs: 200, deadlineMsPerMB: 30 }, context);
    const elapsed = await feed(watch, 1_000_000, 5_000);
    expect(watch.tripped?.message).toMatch(/past its deadline of 0\.5 s/);
    expect(elapsed).toBeGreaterThanOrEqual(500);
    expect(elapsed).toBeLessThan(2_000);
  });

  it("a cancellation is not a slow remote", async () => {
    const outer = new AbortController();
    const watch = new TransferWatch(21e6, { minBytesPerSecond: 100_000, windowMs: 300 }, context, outer.signal);
    setTimeout(() => outer.abort("SIGTERM"), 100);
    await feed(watch, 1_000, 1_000);
    expect(watch.signal.aborted).toBe(true);
    expect(watch.cancelled).toBe(true);
    expect(watch.tripped).toBeUndefined();
  });
});
