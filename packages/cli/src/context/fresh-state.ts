// Owns what --fresh and --ephemeral say before a run: --fresh discards what earlier runs of the
// system wrote, so it asks first on a terminal and wants --yes anywhere else, and says what it
// discarded; --ephemeral starts empty, which it says when there are earlier files it leaves out
// (--snapshot starts from them instead).

import { createInterface } from "node:readline/promises";
import { isatty } from "node:tty";
import { CastleError } from "@castle/errors";
import { formatBytes } from "../ui/format";
import { storedState, type StoredState } from "./system-state";
import { UsageError } from "./usage-error";

export interface StateChoice {
  fresh: boolean;
  ephemeral: boolean;
  snapshot: boolean;
  /** --yes: --fresh may discard without asking. */
  yes: boolean;
}

/** Checks the choice before the system runs; returns what --fresh will discard, if anything. */
export async function confirmStateChoice(dataDir: string, system: string, choice: StateChoice, command: string): Promise<StoredState | undefined> {
  if (choice.snapshot && (choice.fresh || choice.ephemeral)) {
    throw new UsageError("--snapshot starts from the system's files: it cannot be combined with --fresh or --ephemeral", command);
  }
  const stored = storedState(dataDir, system);
  if (choice.ephemeral) {
    if (stored) process.stderr.write(`castle: --ephemeral starts empty: the ${describe(stored)} earlier runs of ${system} wrote are not used (--snapshot starts from them)\n`);
    return undefined;
  }
  if (!choice.fresh || !stored) return undefined;
  if (choice.yes) return stored;
  const what = `${describe(stored)} that earlier runs of ${system} wrote (in ${stored.dir})`;
  if (!(isatty(0) && isatty(2))) {
    throw new UsageError(`--fresh would discard the ${what}; add --yes to confirm when not on a terminal`, command);
  }
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await prompt.question(`castle: --fresh discards the ${what}. Discard them? [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) {
      throw new CastleError("CASTLE_CANCELLED", "--fresh was not confirmed: nothing was discarded", {
        hint: "run without --fresh to keep the files, or with --ephemeral to try something in a throwaway state",
      });
    }
  } finally {
    prompt.close();
  }
  return stored;
}

/** After --fresh discarded them: one line saying what went. */
export function reportDiscarded(system: string, stored: StoredState | undefined): void {
  if (stored) process.stderr.write(`castle: --fresh: discarding the ${describe(stored)} earlier runs of ${system} wrote\n`);
}

function describe(stored: StoredState): string {
  return `${stored.files} ${stored.files === 1 ? "file" : "files"} (${formatBytes(stored.bytes)})`;
}
