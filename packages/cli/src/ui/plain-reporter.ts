// Owns the plain-line view for CI, `--plain` and non-TTY streams: it draws the shared view state
// (view-state.ts) as lines — each new transcript entry once (a build starting, a layer finishing,
// a source fetched, a warning, a push), a layer starting to wait for a build slot, the progress
// of pulls and of sources being fetched or unpacked (when it starts, then at most every
// PROGRESS_LINE_INTERVAL_MS each), build log lines when verbose — then the failure block and the
// summary. No escape codes, ever.

import type { Writable } from "node:stream";
import type { BuildEvent } from "@castle/graph";
import { describeReason, formatByteProgress, formatBytes, formatRate, stripTerminalControls, summarizeBuild } from "./format";
import { failureBlock, fetchedLine, finishedLine, interruptedLine } from "./layer-lines";
import { summaryExtras } from "./progress-estimate";
import type { Reporter } from "./reporter";
import { isFetchPhase, phaseWord } from "./source-state";
import type { LayerView, TranscriptEntry, ViewState } from "./view-state";
import { initialState, reduce } from "./view-state";

/** At most one progress line per pull or source per this many ms (plus one when a pull completes). */
export const PROGRESS_LINE_INTERVAL_MS = 2000;

export interface PlainReporterOptions {
  /** Where lines go. Default: process.stderr. */
  stream?: Writable;
  /** Print every build log line, prefixed with its layer. Default: false. */
  verbose?: boolean;
  /** Clock in ms. Default: Date.now. */
  now?: () => number;
}

export interface PlainReporter extends Reporter {
  /** The view state so far. */
  readonly state: ViewState;
}

export function createPlainReporter({ stream = process.stderr, verbose = false, now = Date.now }: PlainReporterOptions = {}): PlainReporter {
  let state = initialState();
  let entriesPrinted = 0;
  let failuresPrinted = 0;
  const lastPullLine = new Map<string, { at: number; complete: boolean }>();
  const lastSourceLine = new Map<string, { at: number; phase: string }>();
  const write = (line: string): void => {
    stream.write(`${line}\n`);
  };

  const printFailures = (): void => {
    for (const failure of state.failures.slice(failuresPrinted)) for (const line of failureBlock(failure)) write(line);
    failuresPrinted = state.failures.length;
  };

  /** Lines for what the event changed that is not in the transcript: progress and log lines. */
  const liveLines = (event: BuildEvent, at: number): string[] => {
    if (event.type === "log") return verbose ? [`${event.layer} | ${stripTerminalControls(event.line)}`] : [];
    if (event.type === "waiting") return [`waiting ${event.layer}: all ${state.jobs === undefined ? "" : `${state.jobs} `}build slots are busy`];
    if (event.type === "source") return sourceLines(event.source, at);
    if (event.type !== "pulling") return [];
    const phase = layerOf(state, event.layer)?.phase;
    if (phase?.kind !== "pulling") return [];
    const complete = phase.bytesTotal > 0 && phase.bytesDone >= phase.bytesTotal;
    const last = lastPullLine.get(event.layer);
    const due = !last || (complete ? !last.complete : at - last.at >= PROGRESS_LINE_INTERVAL_MS);
    if (!due) return [];
    lastPullLine.set(event.layer, { at, complete });
    const rate = phase.bytesPerSecond > 0 ? ` (${formatRate(phase.bytesPerSecond)})` : "";
    return [`pulling ${event.layer} ${formatByteProgress(phase.bytesDone, phase.bytesTotal)}${rate}`];
  };

  /** A source's progress: when it starts downloading, cloning or unpacking, then every interval. */
  const sourceLines = (name: string, at: number): string[] => {
    const position = state.sourcePositionOf.get(name);
    const source = position === undefined ? undefined : state.sources[position];
    if (!source || source.finishedAt !== undefined || source.phase === "store" || source.phase === "done") return [];
    // A download or clone shows when it starts; unpacking or copying only once it lasts.
    const last = lastSourceLine.get(name);
    const lasting = isFetchPhase(source.phase) || at - source.phaseStartedAt >= PROGRESS_LINE_INTERVAL_MS;
    const due = lasting && (!last || last.phase !== source.phase || at - last.at >= PROGRESS_LINE_INTERVAL_MS);
    if (!due) return [];
    lastSourceLine.set(name, { at, phase: source.phase });
    const bytes = source.bytesTotal ? formatByteProgress(source.bytesDone, source.bytesTotal) : formatBytes(source.bytesDone);
    const rate = source.bytesPerSecond > 0 ? ` (${formatRate(source.bytesPerSecond)})` : "";
    return [`${phaseWord(source.phase)} ${name} ${bytes}${rate}`];
  };

  return {
    get state() {
      return state;
    },
    onEvent(event) {
      if (state.result) return;
      const at = now();
      const before = state;
      state = reduce(state, event, at);
      if (state === before && event.type !== "log") return;
      for (const entry of state.transcript.slice(entriesPrinted)) {
        const line = transcriptLine(entry, state.counters.total);
        if (line !== undefined) write(line);
      }
      entriesPrinted = state.transcript.length;
      for (const line of liveLines(event, at)) write(line);
      if (state.result) {
        printFailures();
        write(summarizeBuild(state.result.ok, state.result.stats, summaryExtras(state)));
      }
    },
    async close() {
      printFailures();
    },
  };
}

function transcriptLine(entry: TranscriptEntry, total: number): string | undefined {
  switch (entry.kind) {
    case "building":
      return `building ${entry.layer} (${describeReason(entry.reason)})`;
    case "finished":
      return `${counterPrefix(entry.position, total)} ${finishedLine(entry.layer)}`;
    case "fetched":
      // What came over the network; a local copy shows only while it lasts (a progress line).
      return entry.source.fetchedBytes > 0 ? fetchedLine(entry.source) : undefined;
    case "interrupted":
      return interruptedLine(entry.signal);
    case "pushed":
      return `pushed ${entry.layer} (${entry.bytes > 0 ? formatBytes(entry.bytes) : "already in the remote"})`;
    case "note":
      return stripTerminalControls(entry.message);
    case "warning":
      return `warning: ${stripTerminalControls(entry.message)}`;
    default:
      return undefined;
  }
}

function layerOf(state: ViewState, name: string): LayerView | undefined {
  const position = state.positionOf.get(name);
  return position === undefined ? undefined : state.layers[position];
}

/** "[ 3/12]": position padded to the width of the total. */
export function counterPrefix(position: number, total: number): string {
  const width = String(total).length;
  return `[${String(position).padStart(width)}/${total}]`;
}
