// Owns the one line a terminal shows while the live view itself is loading (ink and react take a
// few hundred ms to load): a spinner and the seconds since the run began, redrawn in place with
// a carriage return and cleared when the live view takes over. Plain escape codes, no ink.

import type { Writable } from "node:stream";

const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"] as const;
const FRAME_MS = 80;

export interface PlaceholderLine {
  /** Clears the line; the cursor is left at its start. */
  stop(): void;
}

export function startPlaceholderLine(stream: Writable, since: number, text = "starting…"): PlaceholderLine {
  let frame = 0;
  const draw = () => {
    const seconds = ((Date.now() - since) / 1000).toFixed(1);
    stream.write(`\r${SPINNER[frame++ % SPINNER.length]} ${text} ${seconds}s\x1b[K`);
  };
  draw();
  const timer = setInterval(draw, FRAME_MS);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      stream.write("\r\x1b[2K");
    },
  };
}
