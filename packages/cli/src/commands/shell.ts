// Owns `castle shell`: `castle run` with a login shell instead of the entrypoint.

import { main as run, RUN_OPTIONS_HELP } from "./run";

const HELP = `usage: castle shell <git-url|dir> [branch] [subdir] [options]

Builds or fetches every layer the system needs, then starts a login shell (/bin/sh -l) in the
composed root, on your terminal, with the system's environment and working directory. What you
change there persists for the next run or shell of the same system.

examples:
  castle shell ./my-system
  castle shell https://example.org/distro.git main examples/distro
  castle shell . --snapshot           # try something on the system's files; nothing is kept

options:
${RUN_OPTIONS_HELP}

exit status: the shell's own; see \`castle --help\` for Castle's.
`;

export function main(argv: string[]): Promise<number> {
  return run(argv, { help: HELP });
}
