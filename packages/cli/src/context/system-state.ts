// Owns a system's persistent state: the upper dir that keeps what the user writes (home, /etc
// edits, installed files) across runs and across rebuilds of the layers beneath it, under
// $XDG_DATA_HOME/castle/systems/<name>. `--fresh` starts it clean; `--ephemeral` uses a
// throwaway one that is removed after the run.

import { mkdirSync, mkdtempSync } from "node:fs";
import { join } from "node:path";
import { removeTree } from "@castle/cache/store";

export interface UpperDir {
  upper: string;
  work: string;
  /** Removes an ephemeral upper; keeps a persistent one. */
  release(): void;
}

export function systemUpper(dataDir: string, system: string, mode: { fresh: boolean; ephemeral: boolean }): UpperDir {
  if (mode.ephemeral) {
    mkdirSync(join(dataDir, "tmp"), { recursive: true });
    const dir = mkdtempSync(join(dataDir, "tmp", `${system}-`));
    mkdirSync(join(dir, "upper"));
    mkdirSync(join(dir, "work"));
    return { upper: join(dir, "upper"), work: join(dir, "work"), release: () => removeTree(dir) };
  }
  const dir = join(dataDir, "systems", system);
  if (mode.fresh) removeTree(dir);
  mkdirSync(join(dir, "upper"), { recursive: true });
  // overlayfs needs an empty work dir; leftovers from a killed run are cleared.
  removeTree(join(dir, "work"));
  mkdirSync(join(dir, "work"));
  return { upper: join(dir, "upper"), work: join(dir, "work"), release: () => {} };
}
