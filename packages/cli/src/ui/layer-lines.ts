// Owns the words both progress views use for a layer that finished ("built musl in 21.4s",
// "cached busybox", "failed lua: ..."), a source that was fetched ("fetched musl-src (1.1 MB in
// 0.8s)") and a failure (message, log tail, log path), so the TTY view and the plain lines
// always say the same thing.

import { formatBytes, formatDuration, stripTerminalControls } from "./format";
import type { SourceView } from "./source-state";
import type { FailureView, LayerView } from "./view-state";

/** What happened to a finished layer, e.g. "built musl in 21.4s". */
export function finishedLine(layer: LayerView): string {
  const phase = layer.phase;
  switch (phase.kind) {
    case "done":
      if (phase.origin === "built" && layer.kind === "import") return `imported ${layer.name} in ${formatDuration(phase.durationMs)}`;
      if (phase.origin === "built") return `built ${layer.name} in ${formatDuration(phase.durationMs)}`;
      if (phase.origin === "pulled") {
        const size = phase.bytes === undefined ? "" : `${formatBytes(phase.bytes)} in `;
        return `pulled ${layer.name} (${size}${formatDuration(phase.durationMs)})`;
      }
      return phase.cacheHit ? `cached ${layer.name}` : `ready ${layer.name}`;
    case "failed":
      return phase.stopped ? `stopped ${layer.name}: the build was interrupted` : `failed ${layer.name}: ${firstLine(phase.message)}`;
    case "skipped":
      return `skipped ${layer.name}: ${phase.because}`;
    default:
      return `${phase.kind} ${layer.name}`;
  }
}

/** "interrupted (Ctrl-C): stopping what is running; what is done is kept". */
export function interruptedLine(signal: string | undefined): string {
  return `interrupted${signal ? ` (${signalName(signal)})` : ""}: stopping what is running; what is done is kept`;
}

/** "Ctrl-C" for SIGINT, the signal's name otherwise. */
export function signalName(signal: string): string {
  return signal === "SIGINT" ? "Ctrl-C" : signal;
}

/** A source made ready: "fetched musl-src (1.1 MB in 0.8s)", "copied rootfs (…)". */
export function fetchedLine(source: SourceView): string {
  const took = formatDuration((source.finishedAt ?? source.startedAt) - source.startedAt);
  if (source.fetchedBytes > 0) return `fetched ${source.name} (${formatBytes(source.fetchedBytes)} in ${took})`;
  const size = source.storedBytes ? `${formatBytes(source.storedBytes)} in ` : "";
  return `prepared ${source.name} (${size}${took})`;
}

/** The lines that explain a failure: which layer, why, the end of its log, where the rest is. */
export function failureBlock(failure: FailureView): string[] {
  const [headline = "", ...details] = failure.message.split("\n").map(stripTerminalControls);
  const lines = [`error: ${failure.layer} failed: ${headline}`, ...details.filter((d) => d.trim()).map((d) => `  ${d}`)];
  if (failure.logTail.length > 0) {
    lines.push(`last ${failure.logTail.length} lines of the log of ${failure.layer}:`);
    for (const line of failure.logTail) lines.push(`  | ${stripTerminalControls(line)}`);
  }
  if (failure.logPath) lines.push(`full log: ${failure.logPath}`);
  return lines;
}

function firstLine(text: string): string {
  return stripTerminalControls(text.split("\n")[0] ?? "");
}
