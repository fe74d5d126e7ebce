// Owns the floor under every download: a transfer is abandoned when, over any window of
// `windowMs` once one has passed, fewer than minBytesPerSecond × window bytes arrived (a server
// that trickles keeps idle timeouts happy forever), or when it runs past a deadline proportional to
// its size. Abandoning aborts the watch's signal with a CASTLE_REMOTE_TIMEOUT that says which
// limit was hit; a cancellation by the caller's own signal stays a cancellation.

import type { CastleError } from "@castle/errors";
import { type RemoteContext, remoteFault } from "./remote-errors";

export interface TransferLimits {
  /** The floor, bytes per second. Default 100 kB/s. */
  minBytesPerSecond?: number;
  /** Over how long the floor is measured, ms. Default 20 s. */
  windowMs?: number;
  /** Every transfer may take this long, ms, plus deadlineMsPerMB per MB of its size. Default 60 s. */
  deadlineBaseMs?: number;
  /** Default 20 s per MB (a 50 kB/s average). */
  deadlineMsPerMB?: number;
}

export const DEFAULT_TRANSFER_LIMITS: Required<TransferLimits> = {
  minBytesPerSecond: 100_000,
  windowMs: 20_000,
  deadlineBaseMs: 60_000,
  deadlineMsPerMB: 20_000,
};

/** Watches one transfer; call progress() with the running total, stop() when it is over. */
export class TransferWatch {
  private readonly controller = new AbortController();
  private readonly limits: Required<TransferLimits>;
  private readonly started = Date.now();
  private readonly deadlineMs: number;
  /** (time, bytes) samples, one per tick, oldest first, covering at least one window. */
  private readonly samples: Array<[number, number]> = [];
  private readonly timer: NodeJS.Timeout;
  private readonly onOuterAbort: () => void;
  private bytes = 0;
  /** Why the transfer was abandoned, once it was. */
  tripped: CastleError | undefined;

  constructor(
    private readonly size: number,
    limits: TransferLimits,
    private readonly context: RemoteContext,
    private readonly outer?: AbortSignal,
  ) {
    this.limits = { ...DEFAULT_TRANSFER_LIMITS, ...definedOnly(limits) };
    this.deadlineMs = this.limits.deadlineBaseMs + (size / 1e6) * this.limits.deadlineMsPerMB;
    this.samples.push([this.started, 0]);
    const tick = Math.max(50, Math.min(1000, this.limits.windowMs / 4));
    this.timer = setInterval(() => this.check(), tick);
    this.timer.unref();
    this.onOuterAbort = () => this.controller.abort(outer?.reason);
    if (outer?.aborted) this.onOuterAbort();
    else outer?.addEventListener("abort", this.onOuterAbort, { once: true });
  }

  /** Aborted when the caller cancels or the transfer is abandoned. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** True when the caller cancelled (not the watch). */
  get cancelled(): boolean {
    return this.outer?.aborted === true;
  }

  progress(bytesDone: number): void {
    this.bytes = bytesDone;
  }

  stop(): void {
    clearInterval(this.timer);
    this.outer?.removeEventListener("abort", this.onOuterAbort);
  }

  private check(now = Date.now()): void {
    if (this.controller.signal.aborted) return this.stop();
    this.samples.push([now, this.bytes]);
    const { windowMs, minBytesPerSecond } = this.limits;
    // Keep one sample at or before the window's start, drop older ones.
    while (this.samples.length > 2 && (this.samples[1] as [number, number])[0] <= now - windowMs) this.samples.shift();
    const elapsed = now - this.started;
    if (elapsed > this.deadlineMs) {
      return this.trip(`it ran for ${seconds(elapsed)} with ${megabytes(this.bytes)} of ${megabytes(this.size)} done, past its deadline of ${seconds(this.deadlineMs)}`);
    }
    const [since, before] = this.samples[0] as [number, number];
    if (now - since >= windowMs) {
      const rate = ((this.bytes - before) * 1000) / (now - since);
      if (rate < minBytesPerSecond) {
        return this.trip(`it moved ${megabytes(this.bytes - before)} in the last ${seconds(now - since)} (${kbps(rate)}), below the floor of ${kbps(minBytesPerSecond)}`);
      }
    }
  }

  private trip(why: string): void {
    this.tripped = remoteFault("CASTLE_REMOTE_TIMEOUT", `${why}; abandoned (limits: the transfer.* settings, see castle config)`, this.context, {
      data: { bytesDone: this.bytes, bytesTotal: this.size },
    });
    this.stop();
    this.controller.abort(this.tripped);
  }
}

function definedOnly(limits: TransferLimits): TransferLimits {
  return Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined)) as TransferLimits;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}

function megabytes(bytes: number): string {
  return bytes < 1e6 ? `${(bytes / 1e3).toFixed(1)} kB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

function kbps(rate: number): string {
  return `${(rate / 1e3).toFixed(1)} kB/s`;
}
