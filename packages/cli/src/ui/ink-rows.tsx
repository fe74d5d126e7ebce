// Owns the small ink components the live view is made of: a printed-once transcript row (a
// finished layer, a fetched source, a warning, a push), a live row for a building or pulling
// layer or a source being fetched, the row of layers waiting for a build slot, the status line
// shown while nothing else moves, the progress bar line, the failure block and the end-of-build
// summary. Each is a pure function of its props.

import { Box, Text } from "ink";
import type { BuildStats } from "@castle/graph";
import { describeReason, formatByteProgress, formatBytes, formatDuration, formatRate, stripTerminalControls, summarizeBuildParts, type SummaryExtras } from "./format";
import { failureBlock, fetchedLine, finishedLine, interruptedLine } from "./layer-lines";
import { activityOf } from "./log-activity";
import type { ProgressEstimate } from "./progress-estimate";
import { phaseWord, type SourceView } from "./source-state";
import type { Counters, FailureView, LayerView, TranscriptEntry } from "./view-state";

/** A build silent for longer than this shows how long it has been quiet. */
export const QUIET_AFTER_MS = 5000;

const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"] as const;
const SPINNER_FRAME_MS = 80;

/** The spinner glyph at a time, so a frame is a pure function of `now`. */
export function spinnerAt(now: number): string {
  return SPINNER[Math.floor(now / SPINNER_FRAME_MS) % SPINNER.length] ?? "·";
}

/** One line printed once above the live area. */
export function TranscriptRow({ entry }: { entry: TranscriptEntry }) {
  switch (entry.kind) {
    case "warning":
      return <Text color="yellow" wrap="truncate-end">⚠ warning: {stripTerminalControls(entry.message)}</Text>;
    case "note":
      return <Text dimColor wrap="truncate-end">· {stripTerminalControls(entry.message)}</Text>;
    case "pushed":
      return (
        <Text dimColor wrap="truncate-end">
          ↑ pushed {entry.layer} ({entry.bytes > 0 ? formatBytes(entry.bytes) : "already in the remote"})
        </Text>
      );
    case "finished":
      return <FinishedRow layer={entry.layer} />;
    case "fetched":
      return <Text dimColor wrap="truncate-end">↓ {fetchedLine(entry.source)}</Text>;
    case "interrupted":
      return <Text color="yellow" wrap="truncate-end">⚠ {interruptedLine(entry.signal)}</Text>;
    default:
      return null;
  }
}

function FinishedRow({ layer }: { layer: LayerView }) {
  const phase = layer.phase;
  const text = finishedLine(layer);
  if (phase.kind === "failed") return <Text color={phase.stopped ? "yellow" : "red"} wrap="truncate-end">{phase.stopped ? "-" : "✗"} {text}</Text>;
  if (phase.kind === "skipped") return <Text color="yellow" wrap="truncate-end">- {text}</Text>;
  if (phase.kind === "done" && phase.origin === "built") return <Text wrap="truncate-end"><Text color="green">✔</Text> {text}</Text>;
  if (phase.kind === "done" && phase.origin === "pulled") return <Text wrap="truncate-end"><Text color="cyan">↓</Text> {text}</Text>;
  return <Text dimColor wrap="truncate-end">· {text}</Text>;
}

/** A running layer: spinner, name, elapsed time and last log line; or pull bytes and rate. */
export function LiveRow({ layer, now, nameWidth = 16 }: { layer: LayerView; now: number; nameWidth?: number }) {
  const phase = layer.phase;
  const name = layer.name.padEnd(nameWidth);
  if (phase.kind === "pulling") {
    const percent = phase.bytesTotal > 0 ? ` ${Math.floor((100 * phase.bytesDone) / phase.bytesTotal)}%` : "";
    const rate = phase.bytesPerSecond > 0 ? `  ${formatRate(phase.bytesPerSecond)}` : "";
    return (
      <Text wrap="truncate-end">
        <Text color="cyan">↓</Text> <Text bold>{name}</Text> {formatByteProgress(phase.bytesDone, phase.bytesTotal)}
        {percent}
        <Text dimColor>{rate}</Text>
      </Text>
    );
  }
  if (phase.kind === "building") {
    const detail = phase.lastLogLine === undefined ? describeReason(phase.reason) : activityOf(phase.lastLogLine);
    const quietMs = now - (phase.lastLogAt ?? phase.startedAt);
    const quiet = quietMs >= QUIET_AFTER_MS ? `  (no output for ${formatDuration(quietMs)})` : "";
    return (
      <Text wrap="truncate-middle">
        <Text color="magenta">{spinnerAt(now)}</Text> <Text bold>{name}</Text> {formatDuration(now - phase.startedAt).padStart(6)}
        <Text dimColor>  {detail}</Text>
        <Text color="yellow">{quiet}</Text>
      </Text>
    );
  }
  return null;
}

/** A source being fetched, unpacked or copied: what it is doing, bytes, share and rate. */
export function SourceRow({ source, now, nameWidth = 16 }: { source: SourceView; now: number; nameWidth?: number }) {
  const total = source.bytesTotal;
  const bytes = total ? formatByteProgress(source.bytesDone, total) : source.bytesDone > 0 ? formatBytes(source.bytesDone) : "";
  const percent = total ? ` ${Math.floor((100 * Math.min(source.bytesDone, total)) / total)}%` : "";
  const rate = source.bytesPerSecond > 0 ? `  ${formatRate(source.bytesPerSecond)}` : "";
  return (
    <Text wrap="truncate-end">
      <Text color="cyan">{spinnerAt(now)}</Text> <Text bold>{source.name.padEnd(nameWidth)}</Text> {formatDuration(now - source.startedAt).padStart(6)}
      {"  "}{phaseWord(source.phase)} {bytes}{percent}
      <Text dimColor>{rate}</Text>
    </Text>
  );
}

/** Layers whose dependencies are ready, waiting for one of the build slots. */
export function WaitingRow({ names, slots }: { names: readonly string[]; slots: number | undefined }) {
  const shown = names.slice(0, 4).join(", ");
  const more = names.length > 4 ? ` +${names.length - 4}` : "";
  return (
    <Text dimColor wrap="truncate-end">
      · waiting for a build slot{slots ? ` (${slots} at once)` : ""}: {shown}{more}
    </Text>
  );
}

/** What Castle is doing while no layer or source row moves: loading, looking layers up. */
export function StatusRow({ text, now }: { text: string; now: number }) {
  return (
    <Text wrap="truncate-end">
      <Text color="magenta">{spinnerAt(now)}</Text> <Text dimColor>{text}</Text>
    </Text>
  );
}

const BAR_WIDTH = 24;

/** "████░░░░ 42%  17/40 layers  3 built · 2 pulled · 12 cached  1m02s · ETA 1m20s". */
export function ProgressBar({ estimate, counters, width = BAR_WIDTH }: { estimate: ProgressEstimate; counters: Counters; width?: number }) {
  const filled = Math.round(estimate.fraction * width);
  const counts = [`${counters.built} built`, `${counters.pulled} pulled`, `${counters.cached} cached`];
  if (counters.failed > 0) counts.push(`${counters.failed} failed`);
  const eta = ` · ETA ${estimate.etaMs === undefined ? "unknown" : `${estimate.etaIsLowerBound ? "≥ " : ""}${formatDuration(estimate.etaMs)}`}`;
  return (
    <Text wrap="truncate-end">
      <Text color="green">{"█".repeat(filled)}</Text>
      <Text dimColor>{"░".repeat(width - filled)}</Text> {String(Math.floor(estimate.fraction * 100)).padStart(3)}%{"  "}
      {estimate.finished}/{estimate.total} layers{"  "}
      <Text dimColor>{counts.join(" · ")}{"  "}{formatDuration(estimate.elapsedMs)}{eta}</Text>
    </Text>
  );
}

/** Which layer failed, its message, the end of its log and where the whole log is. */
export function FailureBlock({ failure }: { failure: FailureView }) {
  const [headline = "", ...rest] = failureBlock(failure);
  return (
    <Box flexDirection="column" marginTop={1}>
      <Text color="red" bold>{headline}</Text>
      {rest.map((line, index) => (
        <Text key={index} dimColor={line.startsWith("  |")} wrap="truncate-end">{line.replaceAll("\t", " ")}</Text>
      ))}
    </Box>
  );
}

export interface OutcomeProps {
  result: { ok: boolean; stats: BuildStats } | undefined;
  counters: Counters;
  extras: SummaryExtras;
  elapsedMs: number;
}

/** Cache hits and misses, then the outcome line; or how far the build got when it stopped early. */
export function Outcome({ result, counters, extras, elapsedMs }: OutcomeProps) {
  const misses = counters.pulled + counters.built;
  const cacheLine = `cache: ${counters.cached} ${counters.cached === 1 ? "hit" : "hits"}, ${misses} ${misses === 1 ? "miss" : "misses"} (${counters.pulled} pulled from the remote, ${counters.built} built)`;
  const [outcome = "", ...details] = result
    ? summarizeBuildParts(result.ok, result.stats, extras)
    : [`stopped: ${counters.finished}/${counters.total} layers finished in ${formatDuration(elapsedMs)}`];
  const ok = result?.ok === true;
  const interrupted = extras.interrupted !== undefined;
  return (
    <Box flexDirection="column" marginTop={1}>
      <Text dimColor>{cacheLine}</Text>
      <Text color={ok ? "green" : interrupted ? "yellow" : "red"} bold>{outcome}</Text>
      {details.length > 0 && <Text dimColor>{details.join("; ")}</Text>}
    </Box>
  );
}
