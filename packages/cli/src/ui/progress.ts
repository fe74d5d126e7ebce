// Owns the one entry the CLI uses to show build progress: choosing between the live ink view and
// plain lines, and creating either. This module must stay cheap to import: ink and react cost
// ~300-400 ms to load, so only the TTY path loads them, with a dynamic import().

import type { Writable } from "node:stream";
import type { BuildEvent } from "@castle/graph";
import { createPlainPrinter } from "./plain-printer";

export type ProgressMode = "tty" | "plain";

export interface ProgressOptions {
  /**
   * "tty" draws with ink, but falls back to plain lines when the stream reports no terminal size
   * (rows 0, e.g. a pty nobody sized), where ink would clear the whole screen every frame.
   */
  mode: ProgressMode;
  /** Show build log lines (plain: every line; tty: also cached and skipped layers). Default: false. */
  verbose?: boolean;
  /** Where progress is drawn. Default: process.stderr. */
  stream?: Writable;
  /** Expected build time of layers by name, for the progress bar and ETA. */
  expectedMs?: Readonly<Record<string, number>>;
}

export interface Progress {
  onEvent(event: BuildEvent): void;
  /** Draws the final state and releases the terminal. Safe to call more than once. */
  close(): Promise<void>;
}

export async function createProgress({ mode, verbose = false, stream = process.stderr, expectedMs = {} }: ProgressOptions): Promise<Progress> {
  if (mode === "tty" && hasTerminalSize(stream)) {
    const { startInkProgress } = await import("./ink-progress");
    return startInkProgress({ stream, verbose, expectedMs });
  }
  const printer = createPlainPrinter({ stream, verbose, expectedMs });
  return {
    onEvent: (event) => printer.onEvent(event),
    close: async () => printer.close(),
  };
}

function hasTerminalSize(stream: Writable): boolean {
  const rows = (stream as Partial<Pick<NodeJS.WriteStream, "rows">>).rows;
  return typeof rows === "number" && rows > 0;
}

export interface ModeInputs {
  /** The `--plain` flag. */
  plain?: boolean;
  /** Whether the progress stream is a terminal (e.g. process.stderr.isTTY). */
  isTTY: boolean | undefined;
  /** Default: process.env. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** "plain" for `--plain`, a stream that is not a terminal, CI, or TERM=dumb; else "tty". */
export function chooseMode({ plain = false, isTTY, env = process.env }: ModeInputs): ProgressMode {
  if (plain || !isTTY) return "plain";
  if (isSet(env.CI) || isSet(env.CONTINUOUS_INTEGRATION) || env.TERM === "dumb") return "plain";
  return "tty";
}

/**
 * Set to anything but "0" or "false" — the rule ink itself uses (is-in-ci) to stop drawing live,
 * so the two never disagree.
 */
function isSet(value: string | undefined): boolean {
  return value !== undefined && value !== "0" && value !== "false";
}
