// Owns choosing how progress is shown: the live view on a terminal, plain lines otherwise. Kept
// apart (no imports) so that deciding costs nothing before any view is loaded.

export type ReporterMode = "tty" | "plain";

export interface ModeInputs {
  /** The `--plain` flag. */
  plain?: boolean;
  /** Whether the progress stream is a terminal (e.g. process.stderr.isTTY). */
  isTTY: boolean | undefined;
  /** Default: process.env. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** "plain" for `--plain`, a stream that is not a terminal, CI, or TERM=dumb; else "tty". */
export function chooseMode({ plain = false, isTTY, env = process.env }: ModeInputs): ReporterMode {
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
