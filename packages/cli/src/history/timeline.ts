// Owns reading a recorded run back as what happened to each layer and source, and when: its
// outcome (built, pulled, cached, merged, failed, skipped), why it was built, its key and log,
// when its dependencies were ready, when it waited for a build slot, when its work began and
// ended; each source's fetch; the CPU samples; and the critical path — the chain of layers,
// each started by the end of the one before, that decided when the run ended. `castle why`
// over a past run and the timings page are both drawn from it.

import type { BuildReason, BuildStats, Layer } from "@castle/graph";
import type { RecordedRun, RunHeader } from "./run-file";

export type LayerOutcome = "built" | "imported" | "pulled" | "cached" | "merged" | "failed" | "skipped" | "unfinished";

export interface LayerTimeline {
  name: string;
  kind: Layer["kind"] | undefined;
  waitsFor: string[];
  expectedMs: number | undefined;
  outcome: LayerOutcome;
  /** When what it waits for was all done (ms into the run). */
  depsReadyAt: number | undefined;
  /** When it began waiting for a build slot, if it had to. */
  slotWaitFrom: number | undefined;
  /** Its own work: building, pulling, or fetching its source (an import). */
  workFrom: number | undefined;
  endedAt: number | undefined;
  key: string | undefined;
  reason: BuildReason | undefined;
  logPath: string | undefined;
  /** Jobs a build was given (MAKEFLAGS -j). */
  jobs: number | undefined;
  bytes: number | undefined;
  /** Why it failed, or why it was skipped. */
  message: string | undefined;
}

export interface SourceTimeline {
  name: string;
  startedAt: number;
  endedAt: number | undefined;
  fetchedBytes: number;
}

export interface RunTimeline {
  header: RunHeader;
  layers: LayerTimeline[];
  sources: SourceTimeline[];
  cpu: { t: number; busy: number }[];
  jobs: number | undefined;
  /** The last recorded moment. */
  endedAt: number;
  result: { ok: boolean; stats: BuildStats } | undefined;
  warnings: string[];
  /** Layer names along the critical path, first to last. */
  criticalPath: string[];
}

export function timelineOf(run: RecordedRun): RunTimeline {
  const layers = new Map<string, LayerTimeline>();
  const sources = new Map<string, SourceTimeline>();
  const layer = (name: string): LayerTimeline => {
    let found = layers.get(name);
    if (!found) {
      found = {
        name, kind: undefined, waitsFor: [], expectedMs: undefined, outcome: "unfinished", depsReadyAt: undefined, slotWaitFrom: undefined,
        workFrom: undefined, endedAt: undefined, key: undefined, reason: undefined, logPath: undefined, jobs: undefined, bytes: undefined, message: undefined,
      };
      layers.set(name, found);
    }
    return found;
  };
  const timeline: RunTimeline = {
    header: run.header, layers: [], sources: [], cpu: [], jobs: undefined, endedAt: 0, result: undefined, warnings: [], criticalPath: [],
  };
  for (const line of run.lines) {
    timeline.endedAt = Math.max(timeline.endedAt, line.t);
    if ("cpu" in line) {
      timeline.cpu.push({ t: line.t, busy: line.cpu });
      continue;
    }
    const { t, event } = line;
    switch (event.type) {
      case "started":
        timeline.jobs = event.jobs;
        break;
      case "queued":
        Object.assign(layer(event.layer), { kind: event.kind, waitsFor: event.waitsFor, expectedMs: event.expectedMs });
        break;
      case "source": {
        const source = sources.get(event.source) ?? { name: event.source, startedAt: t, endedAt: undefined, fetchedBytes: 0 };
        if (event.phase === "download" || event.phase === "clone") source.fetchedBytes = Math.max(source.fetchedBytes, event.bytesDone);
        if (event.phase === "done") source.endedAt = t;
        sources.set(event.source, source);
        break;
      }
      case "waiting":
        layer(event.layer).slotWaitFrom = t;
        break;
      case "pulling": {
        const l = layer(event.layer);
        l.workFrom ??= t;
        l.key = event.key;
        break;
      }
      case "building":
        Object.assign(layer(event.layer), { workFrom: t, key: event.key, reason: event.reason, logPath: event.logPath, jobs: event.jobs });
        break;
      case "done": {
        const l = layer(event.layer);
        l.endedAt = t;
        l.key = event.key;
        l.bytes = event.record.bytes;
        if (event.origin === "local") l.outcome = "cached";
        else if (event.origin === "pulled") l.outcome = "pulled";
        else if (l.kind === "import") {
          l.outcome = "imported";
          // An import's record holds how long its source took; it began that long before.
          l.workFrom ??= event.record.buildMs > 0 ? Math.max(0, t - event.record.buildMs) : undefined;
        } else l.outcome = "built";
        break;
      }
      case "merged":
        Object.assign(layer(event.layer), { outcome: "merged", endedAt: t });
        break;
      case "failed":
        Object.assign(layer(event.layer), { outcome: "failed", endedAt: t, message: event.message, logPath: event.logPath ?? layer(event.layer).logPath });
        break;
      case "skipped":
        Object.assign(layer(event.layer), { outcome: "skipped", endedAt: t, message: event.because });
        break;
      case "warning":
        timeline.warnings.push(event.layer && !event.message.includes(event.layer) ? `${event.layer}: ${event.message}` : event.message);
        break;
      case "finished":
        timeline.result = { ok: event.ok, stats: event.stats };
        break;
      default:
        break;
    }
  }
  timeline.layers = [...layers.values()];
  for (const l of timeline.layers) {
    const ends = l.waitsFor.map((name) => layers.get(name)?.endedAt).filter((at): at is number => at !== undefined);
    l.depsReadyAt = ends.length === l.waitsFor.length ? Math.max(0, ...ends) : undefined;
  }
  timeline.sources = [...sources.values()];
  timeline.criticalPath = criticalPath(timeline.layers);
  return timeline;
}

/**
 * From the layer that ended last, back through the dependency that ended last before it could
 * start: the chain that decided the run's length. Layers that did no work (found in the cache)
 * are passed through but not listed.
 */
/** Events this close together count as one moment (a layer starting as its dependency ends). */
const SAME_MOMENT_MS = 50;

export function criticalPath(layers: readonly LayerTimeline[]): string[] {
  const byName = new Map(layers.map((l) => [l.name, l]));
  const worked = (l: LayerTimeline) => l.workFrom !== undefined && l.endedAt !== undefined;
  let current = layers.filter(worked).sort((a, b) => b.endedAt! - a.endedAt!)[0];
  const path: string[] = [];
  const seen = new Set<string>();
  while (current && !seen.has(current.name)) {
    seen.add(current.name);
    if (worked(current)) path.push(current.name);
    // Only a dependency that ended before this one began can have held it back.
    const began = (current.workFrom ?? current.endedAt ?? 0) + SAME_MOMENT_MS;
    const deps = current.waitsFor.map((name) => byName.get(name)).filter((d): d is LayerTimeline => d?.endedAt !== undefined && d.endedAt <= began);
    current = deps.sort((a, b) => b.endedAt! - a.endedAt!)[0];
  }
  return path.reverse();
}
