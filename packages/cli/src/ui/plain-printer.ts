// Owns the plain-line progress output for CI, `--plain` and non-TTY streams: one line per
// meaningful event, no escape codes, pull progress rate-limited per layer, build log lines only
// when verbose, the failure block (message, log tail, log path) and a summary line at the end.
// It reads the shared view state (view-state.ts) for counters and durations.

import type { Writable } from "node:stream";
import type { BuildEvent } from "@castle/graph";
import { describeReason, formatByteProgress, formatBytes, formatRate, stripTerminalControls, summarizeBuild } from "./format";
import { failureBlock, finishedLine } from "./layer-lines";
import type { LayerView, ViewState, ViewStateOptions } from "./view-state";
import { initialState, reduce } from "./view-state";

/** At most one "pulling" line per layer per this many ms (plus one when the pull completes). */
export const PULL_LINE_INTERVAL_MS = 2000;

export interface PlainPrinterOptions extends ViewStateOptions {
  /** Where lines go. Default: process.stderr. */
  stream?: Writable;
  /** Print every build log line, prefixed with its layer. Default: false. */
  verbose?: boolean;
  /** Clock in ms. Default: Date.now. */
  now?: () => number;
}

export interface PlainPrinter {
  onEvent(event: BuildEvent): void;
  /** Prints any failure not yet printed (when the build stopped before `finished`). */
  close(): void;
  /** The view state so far. */
  readonly state: ViewState;
}

export function createPlainPrinter({ stream = process.stderr, verbose = false, now = Date.now, expectedMs }: PlainPrinterOptions = {}): PlainPrinter {
  let state = initialState({ expectedMs });
  const lastPullLine = new Map<string, { at: number; complete: boolean }>();
  let failuresPrinted = 0;
  const write = (line: string): void => {
    stream.write(`${line}\n`);
  };

  const printFailures = (): void => {
    for (const failure of state.failures.slice(failuresPrinted)) for (const line of failureBlock(failure)) write(line);
    failuresPrinted = state.failures.length;
  };

  const linesFor = (event: BuildEvent, at: number): string[] => {
    switch (event.type) {
      case "pulling": {
        const layer = layerOf(state, event.layer);
        if (layer?.phase.kind !== "pulling") return [];
        const complete = event.bytesTotal > 0 && event.bytesDone >= event.bytesTotal;
        const last = lastPullLine.get(event.layer);
        const due = !last || (complete ? !last.complete : at - last.at >= PULL_LINE_INTERVAL_MS);
        if (!due) return [];
        lastPullLine.set(event.layer, { at, complete });
        const rate = layer.phase.bytesPerSecond > 0 ? ` (${formatRate(layer.phase.bytesPerSecond)})` : "";
        return [`pulling ${event.layer} ${formatByteProgress(event.bytesDone, event.bytesTotal)}${rate}`];
      }
      case "building":
        return [`building ${event.layer} (${describeReason(event.reason)})`];
      case "log":
        return verbose ? [`${event.layer} | ${stripTerminalControls(event.line)}`] : [];
      case "done":
      case "failed":
      case "skipped": {
        const layer = layerOf(state, event.layer);
        const entry = state.transcript[state.transcript.length - 1];
        // Only the event that finished the layer prints (a repeated one changes nothing).
        if (!layer || entry?.kind !== "finished" || entry.layer !== layer) return [];
        return [`${counterPrefix(entry.position, state.counters.total)} ${finishedLine(layer)}`];
      }
      case "pushed":
        return [`pushed ${event.layer} (${event.uploadedBytes > 0 ? formatBytes(event.uploadedBytes) : "already in the remote"})`];
      case "note":
        return [stripTerminalControls(event.message)];
      case "warning":
        return [`warning: ${stripTerminalControls(state.warnings[state.warnings.length - 1] ?? event.message)}`];
      default:
        return [];
    }
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
      for (const line of linesFor(event, at)) write(line);
      if (event.type === "finished") {
        printFailures();
        write(summarizeBuild(event.ok, event.stats, state.counters.skipped));
      }
    },
    close() {
      printFailures();
    },
  };
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
