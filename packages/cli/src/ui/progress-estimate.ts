// Owns the overall progress and the ETA, computed from the view state at a given time (pure, so
// the live view can ask every frame): the fraction of layers finished, weighted by their expected
// build times when known, and the time left, from expected build times (or the builds seen so
// far) divided by the parallelism observed, falling back to the elapsed rate.

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
  /** Estimated time left; undefined while there is nothing to estimate from. */
  etaMs: number | undefined;
}

/** A running layer never counts as more than this share of its expected time until it is done. */
const MAX_RUNNING_SHARE = 0.95;

export function estimateProgress(state: ViewState, now: number): ProgressEstimate {
  const { finished, total } = state.counters;
  const elapsedMs = state.startedAt === undefined ? 0 : Math.max(0, now - state.startedAt);
  if (state.result) return { finished, total, fraction: 1, elapsedMs, etaMs: 0 };
  if (total === 0) return { finished, total, fraction: 0, elapsedMs, etaMs: undefined };

  const meanExpected = mean(state.layers.flatMap((layer) => (layer.expectedMs === undefined ? [] : [layer.expectedMs])));
  const weightOf = (layer: LayerView): number => layer.expectedMs ?? meanExpected ?? 1;
  let totalWeight = 0;
  let doneWeight = 0;
  for (const layer of state.layers) {
    const weight = weightOf(layer);
    totalWeight += weight;
    doneWeight += weight * shareDone(layer, now, layer.expectedMs);
  }
  const fraction = totalWeight > 0 ? Math.min(1, doneWeight / totalWeight) : finished / total;
  if (finished === total) return { finished, total, fraction, elapsedMs, etaMs: 0 };

  const estimateOf = buildTimeEstimator(state, meanExpected);
  const etaMs = estimateOf ? remainingFromEstimates(state, now, estimateOf) : remainingFromRate(elapsedMs, finished / total);
  return { finished, total, fraction, elapsedMs, etaMs };
}

/** How much of a layer is done, 0..1. */
function shareDone(layer: LayerView, now: number, expectedMs: number | undefined): number {
  const phase = layer.phase;
  if (isFinished(phase)) return 1;
  if (phase.kind === "pulling" && phase.bytesTotal > 0) return Math.min(MAX_RUNNING_SHARE, phase.bytesDone / phase.bytesTotal);
  if (phase.kind === "building" && expectedMs) return Math.min(MAX_RUNNING_SHARE, (now - phase.startedAt) / expectedMs);
  return 0;
}

/**
 * How long a layer is expected to build: its own expected time, else the mean of the expected
 * times given, else the mean of the builds finished in this run; undefined when none is known.
 */
function buildTimeEstimator(state: ViewState, meanExpected: number | undefined): ((layer: LayerView) => number) | undefined {
  const fallback = meanExpected ?? mean(builtDurations(state));
  if (fallback === undefined) return undefined;
  return (layer) => layer.expectedMs ?? fallback;
}

function builtDurations(state: ViewState): number[] {
  const durations: number[] = [];
  for (const layer of state.layers) {
    if (layer.phase.kind === "done" && layer.phase.origin === "built") durations.push(layer.phase.durationMs);
  }
  return durations;
}

/** Work left, spread over as many builds as were seen running at once, but never less than the longest piece. */
function remainingFromEstimates(state: ViewState, now: number, estimateOf: (layer: LayerView) => number): number {
  let sum = 0;
  let longest = 0;
  for (const layer of state.layers) {
    const phase = layer.phase;
    if (isFinished(phase) || phase.kind === "cached") continue;
    let left = estimateOf(layer);
    if (phase.kind === "building") left = Math.max(0, left - (now - phase.startedAt));
    if (phase.kind === "pulling") {
      const rate = phase.bytesPerSecond;
      left = rate > 0 ? (Math.max(0, phase.bytesTotal - phase.bytesDone) / rate) * 1000 : 0;
    }
    sum += left;
    longest = Math.max(longest, left);
  }
  const parallelism = Math.max(1, state.peakBuilding, state.counters.building);
  return Math.round(Math.max(sum / parallelism, longest));
}

/** Elapsed time scaled by the share still to do; undefined before anything finished. */
function remainingFromRate(elapsedMs: number, fraction: number): number | undefined {
  if (fraction <= 0 || elapsedMs <= 0) return undefined;
  return Math.round((elapsedMs * (1 - fraction)) / fraction);
}

function mean(values: readonly number[]): number | undefined {
  const usable = values.filter((v) => Number.isFinite(v) && v > 0);
  if (usable.length === 0) return undefined;
  return usable.reduce((a, b) => a + b, 0) / usable.length;
}
