// Owns the exit statuses scripts can rely on, and the mapping from error codes to them. Only the
// CLI maps codes to statuses; packages just throw CastleErrors with stable codes.

import { constants } from "node:os";
import { isCastleError } from "@castle/errors";

export const EXIT = {
  ok: 0,
  buildFailed: 1,
  usage: 2,
  definition: 3,
  fetch: 4,
  cache: 5,
  noInstance: 6,
  sandbox: 125,
  notExecutable: 126,
  notFound: 127,
  interrupted: 130,
} as const;

/** Exit-status table for `--help` and the README. */
export const EXIT_TABLE = `exit status:
  0    success (for run/shell/exec: the command's own status)
  1    a layer failed to build
  2    bad command line
  3    the definition is invalid (syntax, cycle, missing dependency, too deep, bad option)
  4    a source or the definition repository could not be fetched or verified
  5    the local store or a remote cache failed (with --strict-export)
  6    no such running instance
  125  the sandbox could not be set up
  126  the command is not executable (run/shell/exec)
  127  the command was not found (run/shell/exec)
  130  interrupted (128 + the signal's number: 143 for SIGTERM)`;

const BY_PREFIX: [RegExp, number][] = [
  [/^CASTLE_(BUILD_FAILED|BUILD_SKIPPED)$/, EXIT.buildFailed],
  [/^CASTLE_USAGE/, EXIT.usage],
  [/^CASTLE_(DEFINITION|CYCLE|MISSING_DEPENDENCY|DUPLICATE|MOUNT_OVERLAP|TOO_MANY_LAYERS|OVERRIDE_UNKNOWN)/, EXIT.definition],
  [/^CASTLE_(FETCH|CHECKSUM|GIT|OVERRIDE_MISSING|SOURCE|REPO)/, EXIT.fetch],
  [/^CASTLE_(CACHE|REMOTE|DIGEST|ARCHIVE)/, EXIT.cache],
  [/^CASTLE_INSTANCE_NOT_FOUND/, EXIT.noInstance],
  [/^CASTLE_INSTANCE/, EXIT.usage],
  [/^CASTLE_SANDBOX_NOT_FOUND$/, EXIT.notFound],
  [/^CASTLE_SANDBOX_NOT_EXECUTABLE$/, EXIT.notExecutable],
  [/^CASTLE_SANDBOX/, EXIT.sandbox],
  [/^CASTLE_CANCELLED/, EXIT.interrupted],
];

export function exitCodeFor(error: unknown): number {
  if (!isCastleError(error)) return 1;
  // Stopped by a signal: 128 + its number, as shells report it (SIGINT 130, SIGTERM 143).
  const signal = error.code === "CASTLE_CANCELLED" ? error.data.signal : undefined;
  if (typeof signal === "string" && signal in constants.signals) return 128 + constants.signals[signal as NodeJS.Signals];
  for (const [pattern, code] of BY_PREFIX) if (pattern.test(error.code)) return code;
  return 1;
}
