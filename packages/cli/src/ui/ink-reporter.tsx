// Owns the live TTY reporter: events are folded into the shared view state as they come, except log lines, of which only each layer's latest matters to this view and is
// folded just before the next frame; the screen is redrawn on a fixed interval (~12 fps), never
// per event, so thousands of log lines a second cost a map write each. What a frame shows is
// ink-view.tsx's. Loaded only through reporter.ts's dynamic import(), because ink and react are
// slow to load.

import type { Writable } from "node:stream";
import { render } from "ink";
import type { Reporter } from "./reporter";
import { ProgressView } from "./ink-view";
import { initialState, reduce } from "./view-state";

export interface InkReporterOptions {
  stream: Writable;
  verbose?: boolean;
  /** When the run began (ms), for the elapsed time shown before the first event. Default: now. */
  since?: number;
  /** Redraws per second. Default: 12. */
  fps?: number;
}

/** Rows kept free below the live area on a small terminal (bar, margins, the prompt). */
const RESERVED_ROWS = 6;

export function createInkReporter({ stream, verbose = false, since = Date.now(), fps = 12 }: InkReporterOptions): Reporter {
  const terminal = stream as NodeJS.WriteStream;
  let state = initialState();
  const frame = (final: boolean) => {
    const rows = terminal.rows || 24;
    const maxLiveRows = Math.max(1, Math.min(20, rows - RESERVED_ROWS));
    return <ProgressView state={state} now={Date.now()} since={since} verbose={verbose} final={final || state.result !== undefined} maxLiveRows={maxLiveRows} />;
  };
  const instance = render(frame(false), { stdout: terminal, exitOnCtrlC: false, patchConsole: false, maxFps: fps * 2 });

  // Latest unfolded log line per layer; folded before that layer's next event or the next frame.
  const pendingLogLines = new Map<string, string>();
  const foldLogLine = (layer: string): void => {
    const line = pendingLogLines.get(layer);
    if (line === undefined) return;
    pendingLogLines.delete(layer);
    state = reduce(state, { type: "log", layer, line }, Date.now());
  };
  const foldLogLines = (): void => {
    for (const layer of [...pendingLogLines.keys()]) foldLogLine(layer);
  };

  // Every frame is drawn: the spinner and the elapsed times move even when no event came, so the
  // screen never looks frozen (ink writes nothing when a frame is the same as the last).
  const redraw = (): void => {
    foldLogLines();
    instance.rerender(frame(false));
  };
  const timer = setInterval(redraw, Math.round(1000 / fps));
  timer.unref();

  let closing: Promise<void> | undefined;
  return {
    onEvent(event) {
      if (event.type === "log") {
        pendingLogLines.set(event.layer, event.line);
        return;
      }
      if ("layer" in event && event.layer !== undefined) foldLogLine(event.layer);
      state = reduce(state, event, Date.now());
    },
    close() {
      closing ??= (async () => {
        clearInterval(timer);
        foldLogLines();
        instance.rerender(frame(true));
        instance.unmount();
        await instance.waitUntilExit();
      })();
      return closing;
    },
  };
}
