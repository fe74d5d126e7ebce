// Owns the live TTY view of a build as one component, a pure function of the view state and the
// time: finished layers and warnings printed once through ink's <Static> (they scroll away like
// ordinary output), live rows for the layers building or pulling now, and the progress bar; at
// the end the failure block and the outcome are printed once too, leaving nothing live.

import { Box, Static, Text } from "ink";
import { FailureBlock, LiveRow, Outcome, ProgressBar, TranscriptRow } from "./ink-rows";
import { estimateProgress } from "./progress-estimate";
import type { FailureView, LayerView, TranscriptEntry, ViewState } from "./view-state";

export interface ProgressViewProps {
  state: ViewState;
  /** The time the frame shows (ms), for elapsed times, the spinner and the ETA. */
  now: number;
  /** Also print cached, skipped and pushed layers. */
  verbose?: boolean;
  /** The last frame: print failures and the outcome for good. Default: once `finished` arrived. */
  final?: boolean;
  /** Running layers shown before the rest are counted as "+N more". */
  maxLiveRows?: number;
}

type PrintedItem = TranscriptEntry | { kind: "failure"; failure: FailureView } | { kind: "outcome" };

const NAME_WIDTH_LIMIT = 24;

export function ProgressView({ state, now, verbose = false, final = state.result !== undefined, maxLiveRows = 10 }: ProgressViewProps) {
  const estimate = estimateProgress(state, now);
  const printed: PrintedItem[] = state.transcript.filter((entry) => entry.kind !== "building" && (verbose || isWorthPrinting(entry)));
  if (final) {
    for (const failure of state.failures) printed.push({ kind: "failure", failure });
    printed.push({ kind: "outcome" });
  }
  const running = final ? [] : runningLayers(state);
  const shown = running.slice(0, maxLiveRows);
  const nameWidth = Math.min(NAME_WIDTH_LIMIT, Math.max(0, ...shown.map((layer) => layer.name.length)));
  return (
    <Box flexDirection="column">
      <Static items={printed}>
        {(item, index) => {
          if (item.kind === "failure") return <FailureBlock key={index} failure={item.failure} />;
          if (item.kind === "outcome") {
            return <Outcome key={index} result={state.result} counters={state.counters} elapsedMs={estimate.elapsedMs} />;
          }
          return <TranscriptRow key={index} entry={item} />;
        }}
      </Static>
      {shown.map((layer) => (
        <LiveRow key={layer.name} layer={layer} now={now} nameWidth={nameWidth} />
      ))}
      {running.length > shown.length && <Text dimColor>  +{running.length - shown.length} more running</Text>}
      {!final && state.counters.total > 0 && <ProgressBar estimate={estimate} counters={state.counters} />}
    </Box>
  );
}

/**
 * What is printed without --verbose: built, pulled and failed layers, warnings. Decided from the
 * entry alone, so the printed list only ever grows at its end (as <Static> needs).
 */
function isWorthPrinting(entry: TranscriptEntry): boolean {
  if (entry.kind === "warning" || entry.kind === "note") return true;
  if (entry.kind === "pushed" || entry.kind === "building") return false;
  const phase = entry.layer.phase;
  return phase.kind === "failed" || (phase.kind === "done" && (phase.origin === "built" || phase.origin === "pulled"));
}

function runningLayers(state: ViewState): LayerView[] {
  if (state.counters.building + state.counters.pulling === 0) return [];
  return state.layers.filter((layer) => layer.phase.kind === "building" || layer.phase.kind === "pulling");
}
