// Owns the error for a bad command line: what was wrong and which --help to read.

import { CastleError } from "@castle/errors";

export class UsageError extends CastleError {
  constructor(message: string, command?: string) {
    super("CASTLE_USAGE", message, { hint: `see \`castle ${command ? `${command} ` : ""}--help\`` });
  }
}
