// Owns the part of the view state about sources being made ready (downloads, clones, unpacking,
// copies), folded from `source` events by a pure function: one entry per source in the order
// first heard of, its current phase with bytes and rate, what it fetched from the network, and
// when it was done. view-state.ts calls it; both views draw from what it returns.

import type { BuildEvent, SourcePhase } from "@castle/graph";

export interface SourceView {
  readonly name: string;
  readonly phase: SourcePhase;
  /** When the first event of this source came. */
  readonly startedAt: number;
  /** When its current phase began, and the bytes done then (for the rate). */
  readonly phaseStartedAt: number;
  readonly bytesAtPhaseStart: number;
  readonly bytesDone: number;
  readonly bytesTotal: number | undefined;
  /** Over the current phase so far; 0 until known. */
  readonly bytesPerSecond: number;
  /** Bytes that came over the network (a download or a clone). */
  readonly fetchedBytes: number;
  /** Bytes of the stored tree, once done. */
  readonly storedBytes: number | undefined;
  readonly finishedAt: number | undefined;
}

export type SourceEvent = Extract<BuildEvent, { type: "source" }>;

/** Whether a phase moves bytes over the network. */
export function isFetchPhase(phase: SourcePhase): boolean {
  return phase === "download" || phase === "clone";
}

/** The source after one of its events at time `now`; undefined when the event changes nothing. */
export function nextSourceView(before: SourceView | undefined, event: SourceEvent, now: number): SourceView | undefined {
  if (before?.finishedAt !== undefined) return undefined;
  const samePhase = before?.phase === event.phase;
  const phaseStartedAt = samePhase ? before.phaseStartedAt : now;
  const bytesAtPhaseStart = samePhase ? before.bytesAtPhaseStart : event.bytesDone;
  const seconds = (now - phaseStartedAt) / 1000;
  const bytesPerSecond = samePhase && seconds > 0 ? Math.max(0, event.bytesDone - bytesAtPhaseStart) / seconds : samePhase ? before.bytesPerSecond : 0;
  const fetched = isFetchPhase(event.phase) ? Math.max(event.bytesDone, before?.fetchedBytes ?? 0) : (before?.fetchedBytes ?? 0);
  const done = event.phase === "done";
  return {
    name: event.source,
    phase: event.phase,
    startedAt: before?.startedAt ?? now,
    phaseStartedAt,
    bytesAtPhaseStart,
    bytesDone: event.bytesDone,
    bytesTotal: event.bytesTotal,
    bytesPerSecond,
    fetchedBytes: fetched,
    storedBytes: done ? event.bytesDone : undefined,
    finishedAt: done ? now : undefined,
  };
}

/** What the phase is called where a view says what a source is doing. */
export function phaseWord(phase: SourcePhase): string {
  switch (phase) {
    case "download":
      return "downloading";
    case "clone":
      return "cloning";
    case "unpack":
      return "unpacking";
    case "copy":
      return "copying";
    case "store":
      return "storing";
    case "done":
      return "ready";
    default:
      return phase;
  }
}
