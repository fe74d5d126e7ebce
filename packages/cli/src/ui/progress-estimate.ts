// Owns the overall progress, the ETA and what the cache saved, computed from the view state at
// a given time (pure, so the live view can ask every frame). The ETA simulates the rest of the
// build (schedule-simulation.ts) from each layer's recorded build time — scaled by how fast this
// run has gone so far against its records (a busier or quieter machine than last time) — what
// running builds have done, pull rates and the build slots. A layer that must still be built
// and has no recorded time makes the ETA a lower bound ("at least"), or unknown when nothing
// left is known: it never grows with elapsed time or stands still while a build overruns.

import type { SummaryExtras } from "./format";
import { simulateSchedule, type SimulatedLayer } from "./schedule-simulation";
import type { LayerView, ViewState } from "./view-state";
import { isFinished } from "./view-state";

export interface ProgressEstimate {
  /** Layers finished (done, failed or skipped) and queued. */
  finished: number;
  total: number;
  /** 0..1, weighted by expected build time when known. */
  fraction: number;
  /** Time since the first event. */
  elapsedMs: number;
  /** Estimated time left; undefined while nothing left is known. */
  etaMs: number | undefined;
  /** True when some layers left have no recorded time: the ETA counts only the others. */
  etaIsLowerBound: boolean;
}

/** A running layer never counts as more than this share of its expected time until it is done. */
const MAX_RUNNING_SHARE = 0.95;
/** What a build that overran its recorded time is still expected to need, as a share of it. */
const OVERRUN_SHARE = 0.05;
/** Recorded time of the builds finished in this run before their pace counts (ms)... */
const PACE_EVIDENCE_MS = 10_000;
/** ...and how far it may scale the rest. */
const PACE_RANGE: [number, number] = [0.25, 4];

export function estimateProgress(state: ViewState, now: number): ProgressEstimate {
  const { finished, total } = state.counters;
  const elapsedMs = state.startedAt === undefined ? 0 : Math.max(0, now - state.startedAt);
  if (state.result || (total > 0 && finished === total)) {
    return { finished, total, fraction: 1, elapsedMs, etaMs: 0, etaIsLowerBound: false };
  }
  if (total === 0) return { finished, total, fraction: 0, elapsedMs, etaMs: undefined, etaIsLowerBound: false };
  const { etaMs, unknown } = timeLeft(state, now);
  return { finished, total, fraction: fractionDone(state, now), elapsedMs, etaMs, etaIsLowerBound: etaMs !== undefined && unknown };
}

/** Layers done, weighted by their expected times (unknown ones weigh the mean of the known). */
function fractionDone(state: ViewState, now: number): number {
  const known = state.layers.flatMap((layer) => (layer.expectedMs ? [layer.expectedMs] : []));
  const meanExpected = known.length > 0 ? known.reduce((a, b) => a + b, 0) / known.length : 1;
  let totalWeight = 0;
  let doneWeight = 0;
  for (const layer of state.layers) {
    const weight = layer.kind === "merge" ? 0 : (layer.expectedMs ?? meanExpected);
    totalWeight += weight;
    doneWeight += weight * shareDone(layer, now);
  }
  return totalWeight > 0 ? Math.min(1, doneWeight / totalWeight) : state.counters.finished / state.counters.total;
}

function shareDone(layer: LayerView, now: number): number {
  const phase = layer.phase;
  if (isFinished(phase) || phase.kind === "cached") return 1;
  if (phase.kind === "pulling" && phase.bytesTotal > 0) return Math.min(MAX_RUNNING_SHARE, phase.bytesDone / phase.bytesTotal);
  if (phase.kind === "building" && layer.expectedMs) return Math.min(MAX_RUNNING_SHARE, (now - phase.startedAt) / layer.expectedMs);
  return 0;
}

/** The simulated time until the last layer is done, and whether some layers' times are unknown. */
function timeLeft(state: ViewState, now: number): { etaMs: number | undefined; unknown: boolean } {
  const pace = paceOf(state);
  let unknown = false;
  let anyKnown = false;
  const layers: SimulatedLayer[] = [];
  for (const layer of state.layers) {
    const phase = layer.phase;
    if (isFinished(phase) || phase.kind === "cached") continue;
    const usesSlot = layer.kind !== "import" && layer.kind !== "merge" && phase.kind !== "pulling";
    let remainingMs = 0;
    if (phase.kind === "pulling") {
      if (phase.bytesPerSecond > 0) remainingMs = (Math.max(0, phase.bytesTotal - phase.bytesDone) / phase.bytesPerSecond) * 1000;
    } else if (layer.kind !== "merge") {
      const expected = layer.expectedMs === undefined ? undefined : layer.expectedMs * pace;
      if (expected === undefined || expected <= 0) unknown = true;
      else {
        anyKnown = true;
        const ran = phase.kind === "building" ? now - phase.startedAt : 0;
        remainingMs = Math.max(expected - ran, expected * OVERRUN_SHARE);
      }
    }
    layers.push({ name: layer.name, waitsFor: layer.waitsFor, remainingMs, usesSlot, running: phase.kind === "building" || phase.kind === "pulling" });
  }
  if (!anyKnown && unknown) return { etaMs: undefined, unknown };
  return { etaMs: Math.round(simulateSchedule(layers, state.jobs ?? 1)), unknown };
}

/**
 * How this run's builds compare with their records: the time the finished ones took over the
 * time they took last time (1 until enough of them finished to tell).
 */
export function paceOf(state: ViewState): number {
  let recorded = 0;
  let took = 0;
  let left = 0;
  for (const layer of state.layers) {
    const phase = layer.phase;
    if (!layer.expectedMs || layer.kind !== "build") continue;
    if (phase.kind === "done" && phase.origin === "built" && phase.durationMs > 0) {
      recorded += layer.expectedMs;
      took += phase.durationMs;
    } else if (!isFinished(phase) && phase.kind !== "cached") left += layer.expectedMs;
  }
  if (recorded < PACE_EVIDENCE_MS) return 1;
  const measured = Math.min(PACE_RANGE[1], Math.max(PACE_RANGE[0], took / recorded));
  // Trusted as far as it is the evidence of a good share of the work: one layer that went
  // faster or slower than last time says little about the rest.
  const weight = recorded / (recorded + left);
  return 1 + weight * (measured - 1);
}

/**
 * About how long the layers that came from a cache (found or pulled) would have taken to build,
 * run as this build runs them: their recorded times, scheduled on the build slots. Not the sum
 * of their times, which counts parallel builds twice. Undefined when none has a recorded time.
 */
export function estimateSaved(state: ViewState): number | undefined {
  const saved = new Set<string>();
  const layers: SimulatedLayer[] = [];
  let known = false;
  for (const layer of state.layers) {
    const phase = layer.phase;
    if (phase.kind !== "done" || (phase.origin !== "local" && phase.origin !== "pulled")) continue;
    const ms = phase.recordedMs ?? layer.expectedMs ?? 0;
    if (ms > 0) known = true;
    saved.add(layer.name);
    layers.push({ name: layer.name, waitsFor: layer.waitsFor, remainingMs: ms, usesSlot: layer.kind === "build", running: false });
  }
  if (!known) return undefined;
  for (const layer of layers) layer.waitsFor = layer.waitsFor.filter((name) => saved.has(name));
  return Math.round(simulateSchedule(layers, state.jobs ?? 1));
}

/** What the summary line adds to the scheduler's stats: skipped layers, sources, time saved. */
export function summaryExtras(state: ViewState): SummaryExtras {
  return {
    skipped: state.counters.skipped, sources: state.counters.fetched, sourceBytes: state.counters.fetchedBytes, savedMs: estimateSaved(state),
    interrupted: state.interrupted,
  };
}
