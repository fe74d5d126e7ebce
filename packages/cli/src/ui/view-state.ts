// Owns the progress UI's view state and the pure reducer that folds the scheduler's BuildEvents
// into it: each layer's phase (in queued order), counters, an append-only transcript of what
// finished (for ink's <Static> and the plain view), warnings, failures and the final stats.
// Both views read this state and only draw it; neither keeps its own bookkeeping. Estimates
// live in progress-estimate.ts.

import type { BuildEvent, BuildReason, BuildStats, Layer } from "@castle/graph";
import { nextSourceView, type SourceView } from "./source-state";

export type LayerPhase =
  | { kind: "waiting" }
  /** Its dependencies are ready; it waits for a build slot (since the time given). */
  | { kind: "ready"; since: number }
  /** Found in the local store; its `done` follows. */
  | { kind: "cached" }
  | { kind: "pulling"; startedAt: number; bytesAtStart: number; bytesDone: number; bytesTotal: number; bytesPerSecond: number }
  | {
      kind: "building";
      startedAt: number;
      reason: BuildReason;
      logPath: string;
      jobs: number;
      /** The last log line that says something (not blank, not only punctuation like "#"). */
      lastLogLine: string | undefined;
      /** When the build last wrote anything. */
      lastLogAt: number | undefined;
    }
  | {
      kind: "done";
      /** "merged": a merge layer, done when its layers are. */
      origin: "built" | "pulled" | "local" | "merged";
      /** True when the layer came from the local store (a cache hit), not assembled. */
      cacheHit: boolean;
      durationMs: number;
      /** How long its recorded build took (a cached layer's too), when known. */
      recordedMs: number | undefined;
      /** Size of the layer's tree when recorded; for pulls, the bytes transferred. */
      bytes: number | undefined;
    }
  /** `stopped`: it was killed because the build was interrupted, not because it went wrong. */
  | { kind: "failed"; message: string; code: string | undefined; stopped: boolean }
  | { kind: "skipped"; because: string };

export interface LayerView {
  readonly name: string;
  /** Unknown (undefined) for a layer heard of without its `queued` event. */
  readonly kind: Layer["kind"] | undefined;
  /** Layers it waits for, from its `queued` event. */
  readonly waitsFor: readonly string[];
  /** How long its last recorded build took, from its `queued` event. */
  readonly expectedMs: number | undefined;
  readonly phase: LayerPhase;
  /** Bytes uploaded to the remote cache after the layer was done. */
  readonly pushedBytes: number | undefined;
}

export interface FailureView {
  readonly layer: string;
  readonly message: string;
  readonly code: string | undefined;
  /** The last lines of the layer's build log, oldest first (as many as the event carried). */
  readonly logTail: readonly string[];
  readonly logPath: string | undefined;
}

/** Something that happened once and stays printed: a build started, a layer finished, a warning, a push. */
export type TranscriptEntry =
  | { kind: "building"; layer: string; reason: BuildReason }
  | { kind: "finished"; layer: LayerView; position: number }
  | { kind: "fetched"; source: SourceView }
  | { kind: "interrupted"; signal: string | undefined }
  | { kind: "warning"; layer: string | undefined; message: string }
  | { kind: "note"; message: string }
  | { kind: "pushed"; layer: string; bytes: number };

export interface Counters {
  /** Layers queued (or first heard of). */
  total: number;
  /** Layers that ended: done, failed or skipped. */
  finished: number;
  cached: number;
  pulled: number;
  built: number;
  failed: number;
  skipped: number;
  building: number;
  pulling: number;
  /** Layers ready to build, waiting for a slot. */
  ready: number;
  /** Sources being fetched, unpacked or copied now; those fetched over the network, and their bytes. */
  fetching: number;
  fetched: number;
  fetchedBytes: number;
}

export interface ViewState {
  /** Time of the first event. */
  readonly startedAt: number | undefined;
  /** Builds that may run at once, from the `started` event. */
  readonly jobs: number | undefined;
  /** Every layer, in the order it was queued. */
  readonly layers: readonly LayerView[];
  readonly positionOf: ReadonlyMap<string, number>;
  /** Every source that reported progress, in the order first heard of. */
  readonly sources: readonly SourceView[];
  readonly sourcePositionOf: ReadonlyMap<string, number>;
  readonly counters: Readonly<Counters>;
  /** Most builds seen running at once: the build's effective parallelism, for the ETA. */
  readonly peakBuilding: number;
  /** Append-only: entries are never changed or removed once added. */
  readonly transcript: readonly TranscriptEntry[];
  readonly warnings: readonly string[];
  /** Layers that failed, first failure first. */
  readonly failures: readonly FailureView[];
  /** Set by `cancelled`: the build was interrupted (by this signal, if one). */
  readonly interrupted: { readonly signal: string | undefined } | undefined;
  /** Set by `finished`; the reducer ignores events after it. */
  readonly result: { readonly ok: boolean; readonly stats: BuildStats } | undefined;
}

export function initialState(): ViewState {
  return {
    startedAt: undefined,
    jobs: undefined,
    layers: [],
    positionOf: new Map(),
    sources: [],
    sourcePositionOf: new Map(),
    counters: {
      total: 0, finished: 0, cached: 0, pulled: 0, built: 0, failed: 0, skipped: 0, building: 0, pulling: 0, ready: 0,
      fetching: 0, fetched: 0, fetchedBytes: 0,
    },
    peakBuilding: 0,
    transcript: [],
    warnings: [],
    failures: [],
    interrupted: undefined,
    result: undefined,
  };
}

/** Whether a phase is final: the layer will not change any more. */
export function isFinished(phase: LayerPhase): boolean {
  return phase.kind === "done" || phase.kind === "failed" || phase.kind === "skipped";
}

/** The view state after one event that happened at time `now` (ms). Never mutates `state`. */
export function reduce(state: ViewState, event: BuildEvent, now: number): ViewState {
  if (state.result) return state;
  const started = state.startedAt === undefined ? { ...state, startedAt: now } : state;
  switch (event.type) {
    case "started":
      return { ...started, jobs: event.jobs };
    case "queued":
      return describeLayer(withLayer(started, event.layer), event);
    case "source":
      return reduceSource(started, event, now);
    case "waiting":
      return changePhase(started, event.layer, (phase) => (phase.kind === "waiting" ? { kind: "ready", since: now } : phase));
    case "cache-hit":
      return changePhase(started, event.layer, (phase) => (phase.kind === "cached" ? phase : { kind: "cached" }));
    case "pulling":
      return changePhase(started, event.layer, (phase) => pullingPhase(phase, event, now));
    case "building": {
      const building = changePhase(started, event.layer, () => ({
        kind: "building", startedAt: now, reason: event.reason, logPath: event.logPath, jobs: event.jobs, lastLogLine: undefined, lastLogAt: undefined,
      }));
      if (building.counters.building === started.counters.building) return building;
      return { ...building, transcript: [...building.transcript, { kind: "building", layer: event.layer, reason: event.reason }] };
    }
    case "log":
      return changePhase(started, event.layer, (phase) =>
        phase.kind === "building" ? { ...phase, lastLogLine: SAYS_SOMETHING.test(event.line) ? event.line : phase.lastLogLine, lastLogAt: now } : phase);
    case "done":
      return changePhase(started, event.layer, (phase) => ({
        kind: "done",
        origin: event.origin,
        cacheHit: phase.kind === "cached",
        durationMs: doneDuration(phase, event, now),
        recordedMs: event.record.buildMs > 0 ? event.record.buildMs : undefined,
        bytes: phase.kind === "pulling" ? phase.bytesTotal : event.record.bytes,
      }));
    case "merged":
      return changePhase(started, event.layer, () => ({ kind: "done", origin: "merged", cacheHit: false, durationMs: 0, recordedMs: undefined, bytes: undefined }));
    case "pushed":
      return recordPush(started, event.layer, event.uploadedBytes);
    case "note":
      return { ...started, transcript: [...started.transcript, { kind: "note", message: event.message }] };
    case "warning": {
      const message = event.layer && !event.message.includes(event.layer) ? `${event.layer}: ${event.message}` : event.message;
      return {
        ...started,
        warnings: [...started.warnings, message],
        transcript: [...started.transcript, { kind: "warning", layer: event.layer, message }],
      };
    }
    case "cancelled":
      if (started.interrupted) return started;
      return { ...started, interrupted: { signal: event.signal }, transcript: [...started.transcript, { kind: "interrupted", signal: event.signal }] };
    case "failed": {
      // A build killed because the whole build was interrupted did not go wrong: no failure block.
      const stopped = started.interrupted !== undefined;
      const failed = changePhase(started, event.layer, () => ({ kind: "failed", message: event.message, code: event.code, stopped }));
      if (failed.counters.failed === started.counters.failed || stopped) return failed;
      const failure: FailureView = {
        layer: event.layer,
        message: event.message,
        code: event.code,
        logTail: event.logTail,
        logPath: event.logPath,
      };
      return { ...failed, failures: [...failed.failures, failure] };
    }
    case "skipped": {
      // Once the build is interrupted, nothing is skipped because something "failed": a layer
      // behind a stopped one was not started because of the interruption.
      const because = started.interrupted ? "the build was interrupted" : event.because;
      return changePhase(started, event.layer, () => ({ kind: "skipped", because }));
    }
    case "finished":
      return { ...started, result: { ok: event.ok, stats: event.stats } };
    default:
      return started;
  }
}

/** A log line worth showing as a build's activity has a letter or a digit. */
const SAYS_SOMETHING = /[\p{L}\p{N}]/u;

/** Folds a source's progress: its entry, the counters, and a transcript entry when it is done. */
function reduceSource(state: ViewState, event: Extract<BuildEvent, { type: "source" }>, now: number): ViewState {
  const position = state.sourcePositionOf.get(event.source);
  const before = position === undefined ? undefined : state.sources[position];
  const source = nextSourceView(before, event, now);
  if (!source) return state;
  const sources = state.sources.slice();
  let sourcePositionOf = state.sourcePositionOf;
  if (position === undefined) {
    sourcePositionOf = new Map(sourcePositionOf).set(source.name, sources.length);
    sources.push(source);
  } else sources[position] = source;
  const counters = { ...state.counters };
  if (!before) counters.fetching++;
  if (source.finishedAt !== undefined) {
    counters.fetching--;
    if (source.fetchedBytes > 0) counters.fetched++;
    counters.fetchedBytes += source.fetchedBytes;
  }
  const transcript: readonly TranscriptEntry[] = source.finishedAt === undefined ? state.transcript : [...state.transcript, { kind: "fetched", source }];
  return { ...state, sources, sourcePositionOf, counters, transcript };
}

/** Folds many events that happened at the same time. */
export function reduceAll(state: ViewState, events: Iterable<BuildEvent>, now: number): ViewState {
  let next = state;
  for (const event of events) next = reduce(next, event, now);
  return next;
}

function withLayer(state: ViewState, name: string): { state: ViewState; position: number } {
  const known = state.positionOf.get(name);
  if (known !== undefined) return { state, position: known };
  const position = state.layers.length;
  const positionOf = new Map(state.positionOf).set(name, position);
  return {
    position,
    state: {
      ...state,
      layers: [...state.layers, { name, kind: undefined, waitsFor: [], expectedMs: undefined, phase: { kind: "waiting" }, pushedBytes: undefined }],
      positionOf,
      counters: { ...state.counters, total: state.counters.total + 1 },
    },
  };
}

/** Records what a `queued` event says about a layer. */
function describeLayer({ state, position }: { state: ViewState; position: number }, event: Extract<BuildEvent, { type: "queued" }>): ViewState {
  const layer = state.layers[position];
  if (!layer) return state;
  const layers = state.layers.slice();
  layers[position] = { ...layer, kind: event.kind, waitsFor: event.waitsFor, expectedMs: event.expectedMs };
  return { ...state, layers };
}

/**
 * Replaces a layer's phase and keeps the counters and transcript in step. A finished layer
 * never changes again; an unchanged phase returns the same state.
 */
function changePhase(state: ViewState, name: string, next: (phase: LayerPhase) => LayerPhase): ViewState {
  const { state: known, position } = withLayer(state, name);
  const layer = known.layers[position];
  if (!layer || isFinished(layer.phase)) return known;
  const phase = next(layer.phase);
  if (phase === layer.phase) return known;
  const updated: LayerView = { ...layer, phase };
  const layers = known.layers.slice();
  layers[position] = updated;
  const counters = countTransition(known.counters, layer.phase, phase);
  const finishedNow = isFinished(phase);
  return {
    ...known,
    layers,
    counters,
    peakBuilding: Math.max(known.peakBuilding, counters.building),
    transcript: finishedNow ? [...known.transcript, { kind: "finished", layer: updated, position: counters.finished }] : known.transcript,
  };
}

function countTransition(before: Readonly<Counters>, from: LayerPhase, to: LayerPhase): Counters {
  const counters = { ...before };
  if (from.kind === "building") counters.building--;
  if (from.kind === "pulling") counters.pulling--;
  if (from.kind === "ready") counters.ready--;
  if (to.kind === "ready") counters.ready++;
  if (to.kind === "building") counters.building++;
  if (to.kind === "pulling") counters.pulling++;
  if (to.kind === "cached") counters.cached++;
  if (to.kind === "done" && to.origin === "built") counters.built++;
  if (to.kind === "done" && to.origin === "pulled") counters.pulled++;
  if (to.kind === "failed") counters.failed++;
  if (to.kind === "skipped") counters.skipped++;
  if (isFinished(to)) counters.finished++;
  return counters;
}

function pullingPhase(phase: LayerPhase, event: Extract<BuildEvent, { type: "pulling" }>, now: number): LayerPhase {
  if (phase.kind !== "pulling") {
    return { kind: "pulling", startedAt: now, bytesAtStart: event.bytesDone, bytesDone: event.bytesDone, bytesTotal: event.bytesTotal, bytesPerSecond: 0 };
  }
  const seconds = (now - phase.startedAt) / 1000;
  const bytesPerSecond = seconds > 0 ? Math.max(0, event.bytesDone - phase.bytesAtStart) / seconds : phase.bytesPerSecond;
  return { ...phase, bytesDone: event.bytesDone, bytesTotal: event.bytesTotal, bytesPerSecond };
}

function doneDuration(phase: LayerPhase, event: Extract<BuildEvent, { type: "done" }>, now: number): number {
  if (event.origin === "built") {
    if (event.record.buildMs > 0) return event.record.buildMs;
    return phase.kind === "building" ? now - phase.startedAt : 0;
  }
  if (event.origin === "pulled") return phase.kind === "pulling" ? now - phase.startedAt : 0;
  return 0;
}

function recordPush(state: ViewState, name: string, bytes: number): ViewState {
  const position = state.positionOf.get(name);
  const layer = position === undefined ? undefined : state.layers[position];
  const transcript: TranscriptEntry[] = [...state.transcript, { kind: "pushed", layer: name, bytes }];
  if (!layer || position === undefined) return { ...state, transcript };
  const layers = state.layers.slice();
  layers[position] = { ...layer, pushedBytes: (layer.pushedBytes ?? 0) + bytes };
  return { ...state, layers, transcript };
}
