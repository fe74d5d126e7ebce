// Owns how a failed command reads on stderr: one `castle: <message>` line, a `hint:` line when
// there is one, the cause when verbose; an internal error asks to be reported. The fast path
// keeps these texts for the errors it may meet (fastpath/record-run.ts), so both paths print
// the same bytes.

import { isCastleError, messageOf } from "@castle/errors";

export function formatError(error: unknown, verbose: boolean): string {
  if (isCastleError(error) && error.code === "CASTLE_CANCELLED" && typeof error.data.signal === "string") {
    // Stopped on purpose: say so plainly, and what is left (the exit status says which signal).
    return `castle: interrupted (${signalName(error.data.signal)}): nothing half-built was kept; what was done is cached\n`;
  }
  if (isCastleError(error)) {
    let text = `castle: ${error.message}\n`;
    if (error.hint) text += `hint: ${error.hint}\n`;
    if (verbose && error.cause) text += `cause: ${String((error.cause as Error).stack ?? error.cause)}\n`;
    return text;
  }
  return `castle: internal error: ${messageOf(error)}\n${(error as Error)?.stack ?? ""}\nplease report this with the command you ran\n`;
}

export function signalName(signal: string): string {
  return signal === "SIGINT" ? "Ctrl-C" : signal;
}
