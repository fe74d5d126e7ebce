// Owns the one interface every progress view implements (Reporter: take events, close), and the
// entry the CLI uses to get one: the live ink view on a terminal, plain lines otherwise. This
// module must stay cheap to import: ink and react cost ~300-400 ms to load, so only the TTY path
// loads them, with a dynamic import().

import type { Writable } from "node:stream";
import type { BuildEvent } from "@castle/graph";
import { chooseMode, type ModeInputs, type ReporterMode } from "./mode";
import { startPlaceholderLine } from "./placeholder-line";
import { createPlainReporter } from "./plain-reporter";

/**
 * What the CLI hands a build's events to (vitest's Reporter is the model, with one hook: the
 * events carry what a view needs). A reporter folds events into the shared view state
 * (view-state.ts) and draws it; it never looks anything up.
 */
export interface Reporter {
  /** Takes one event; cheap, whatever the rate (a view draws on its own schedule). */
  onEvent(event: BuildEvent): void;
  /** Draws the final state and releases the output. Safe to call more than once. */
  close(): Promise<void>;
}

export { chooseMode, type ModeInputs, type ReporterMode } from "./mode";

export interface ReporterOptions {
  /**
   * "tty" draws with ink, but falls back to plain lines when the stream reports no terminal size
   * (rows 0, e.g. a pty nobody sized), where ink would clear the whole screen every frame.
   */
  mode: ReporterMode;
  /** Show build log lines (plain: every line; tty: also cached and skipped layers). Default: false. */
  verbose?: boolean;
  /** Where progress is drawn. Default: process.stderr. */
  stream?: Writable;
  /** When the run began (ms), for the elapsed time shown before the first event. Default: now. */
  since?: number;
}

export async function createReporter({ mode, verbose = false, stream = process.stderr, since = Date.now() }: ReporterOptions): Promise<Reporter> {
  if (mode === "tty" && hasTerminalSize(stream)) {
    // Something moves on the screen at once, while ink loads.
    const placeholder = startPlaceholderLine(stream, since);
    try {
      const { createInkReporter } = await import("./ink-reporter");
      placeholder.stop();
      return createInkReporter({ stream, verbose, since });
    } catch (error) {
      placeholder.stop();
      throw error;
    }
  }
  return createPlainReporter({ stream, verbose });
}

/** Starts loading what the reporter for these inputs will need (ink, on a terminal). */
export function warmUpReporter(inputs: ModeInputs): void {
  if (chooseMode(inputs) === "tty") void import("./ink-reporter").catch(() => undefined);
}

function hasTerminalSize(stream: Writable): boolean {
  const rows = (stream as Partial<Pick<NodeJS.WriteStream, "rows">>).rows;
  return typeof rows === "number" && rows > 0;
}

