// Owns the live TTY view of a build as one component, a pure function of the view state and the
// time: finished layers and warnings printed once through ink's <Static> (they scroll away like
// ordinary output), live rows for the sources being fetched and the layers building or pulling
// now, the layers waiting for a build slot, a status line whenever nothing else moves (so the
// screen changes from the first second: loading the definition, looking layers up), and the
// progress bar; at the end the failure block and the outcome are printed once too, leaving
// nothing live.

import { Box, Static, Text } from "ink";
import { FailureBlock, LiveRow, Outcome, ProgressBar, SourceRow, StatusRow, TranscriptRow, WaitingRow } from "./ink-rows";
import { estimateProgress, summaryExtras } from "./progress-estimate";
import type { SourceView } from "./source-state";
import type { FailureView, LayerView, TranscriptEntry, ViewState } from "./view-state";

export interface ProgressViewProps {
  state: ViewState;
  /** The time the frame shows (ms), for elapsed times, the spinner and the ETA. */
  now: number;
  /** Also print cached, skipped and pushed layers, and every fetched source. */
  verbose?: boolean;
  /** The last frame: print failures and the outcome for good. Default: once `finished` arrived. */
  final?: boolean;
  /** Live rows shown before the rest are counted as "+N more". */
  maxLiveRows?: number;
  /** When the run began, for the status line before the first event. Default: the first event. */
  since?: number;
}

type PrintedItem = TranscriptEntry | { kind: "failure"; failure: FailureView } | { kind: "outcome" };

const NAME_WIDTH_LIMIT = 24;

export function ProgressView({ state, now, since, verbose = false, final = state.result !== undefined, maxLiveRows = 10 }: ProgressViewProps) {
  const estimate = estimateProgress(state, now);
  // Elapsed from when the run began, when known (the first event comes after the definition loaded).
  if (since !== undefined) estimate.elapsedMs = Math.max(0, now - since);
  const printed: PrintedItem[] = state.transcript.filter((entry) => entry.kind !== "building" && (verbose || isWorthPrinting(entry)));
  if (final) {
    for (const failure of state.failures) printed.push({ kind: "failure", failure });
    printed.push({ kind: "outcome" });
  }
  const sources = final ? [] : activeSources(state);
  const running = final ? [] : runningLayers(state);
  const shownSources = sources.slice(0, maxLiveRows);
  const shown = running.slice(0, Math.max(0, maxLiveRows - shownSources.length));
  const hidden = sources.length + running.length - shownSources.length - shown.length;
  const names = [...shownSources.map((source) => source.name), ...shown.map((layer) => layer.name)];
  const nameWidth = Math.min(NAME_WIDTH_LIMIT, Math.max(0, ...names.map((name) => name.length)));
  const waiting = final ? [] : state.layers.filter((layer) => layer.phase.kind === "ready").map((layer) => layer.name);
  const status = final || names.length > 0 ? undefined : statusText(state);
  return (
    <Box flexDirection="column">
      <Static items={printed}>
        {(item, index) => {
          if (item.kind === "failure") return <FailureBlock key={index} failure={item.failure} />;
          if (item.kind === "outcome") {
            return <Outcome key={index} result={state.result} counters={state.counters} extras={summaryExtras(state)} elapsedMs={estimate.elapsedMs} />;
          }
          return <TranscriptRow key={index} entry={item} />;
        }}
      </Static>
      {shownSources.map((source) => (
        <SourceRow key={`source:${source.name}`} source={source} now={now} nameWidth={nameWidth} />
      ))}
      {shown.map((layer) => (
        <LiveRow key={layer.name} layer={layer} now={now} nameWidth={nameWidth} />
      ))}
      {hidden > 0 && <Text dimColor>  +{hidden} more running</Text>}
      {waiting.length > 0 && <WaitingRow names={waiting} slots={state.jobs} />}
      {status !== undefined && <StatusRow text={`${status} ${formatSeconds(since === undefined && state.startedAt === undefined ? 0 : estimate.elapsedMs)}`} now={now} />}
      {!final && state.counters.total > 0 && <ProgressBar estimate={estimate} counters={state.counters} />}
    </Box>
  );
}

/** What Castle is doing when nothing is being fetched, pulled or built. */
function statusText(state: ViewState): string {
  if (state.counters.total === 0) return "loading the definition…";
  const left = state.counters.total - state.counters.finished;
  return `looking up ${left} ${left === 1 ? "layer" : "layers"}…`;
}

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/**
 * What is printed without --verbose: built, pulled and failed layers, warnings. Decided from the
 * entry alone, so the printed list only ever grows at its end (as <Static> needs).
 */
function isWorthPrinting(entry: TranscriptEntry): boolean {
  if (entry.kind === "warning" || entry.kind === "note" || entry.kind === "interrupted") return true;
  if (entry.kind === "pushed" || entry.kind === "building" || entry.kind === "fetched") return false;
  const phase = entry.layer.phase;
  return phase.kind === "failed" || (phase.kind === "done" && (phase.origin === "built" || phase.origin === "pulled"));
}

function activeSources(state: ViewState): SourceView[] {
  if (state.counters.fetching === 0) return [];
  return state.sources.filter((source) => source.finishedAt === undefined);
}

function runningLayers(state: ViewState): LayerView[] {
  if (state.counters.building + state.counters.pulling === 0) return [];
  return state.layers.filter((layer) => layer.phase.kind === "building" || layer.phase.kind === "pulling");
}
