// Owns turning an error into the exit status scripts rely on: the status of its code in the
// closed catalogue (@castle/errors), 128 + the signal for a cancellation by a signal, 1 for
// anything that is not a CastleError (an internal error). Also the table `castle --help` prints.

import { constants } from "node:os";
import { ERROR_CATALOGUE, EXIT_STATUS, isCastleError, isErrorCode } from "@castle/errors";

export const EXIT = EXIT_STATUS;

/** Exit-status table for `--help` and the README. */
export const EXIT_TABLE = `exit status:
  0    success (for run/shell/exec: the command's own status)
  1    a layer failed to build (or an internal error)
  2    bad command line
  3    the definition is invalid (syntax, cycle, missing dependency, too deep, bad option)
  4    a source or the definition repository could not be fetched or verified
  5    the local store or a remote cache failed (with --strict-export), or Castle's own
       directories cannot be made (see CASTLE_CACHE_DIR below)
  6    no such running instance
  125  the sandbox could not be set up
  126  the command is not executable (run/shell/exec)
  127  the command was not found (run/shell/exec)
  130  interrupted (128 + the signal's number: 143 for SIGTERM)`;

export function exitCodeFor(error: unknown): number {
  if (!isCastleError(error) || !isErrorCode(error.code)) return EXIT.buildFailed;
  // Stopped by a signal: 128 + its number, as shells report it (SIGINT 130, SIGTERM 143).
  const signal = error.code === "CASTLE_CANCELLED" ? error.data.signal : undefined;
  if (typeof signal === "string" && signal in constants.signals) return 128 + constants.signals[signal as NodeJS.Signals];
  return ERROR_CATALOGUE[error.code].exit;
}
