// Owns where Castle keeps things on the user's machine, the XDG way: the store (cache), running
// instances (state), and each system's persistent upper dir (data). Each can be overridden.

import { mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { defaultStoreRoot } from "@castle/cache/store";

export interface CastlePaths {
  /** The content-addressed store: $CASTLE_CACHE_DIR or $XDG_CACHE_HOME/castle. */
  store: string;
  /** Running instances: $CASTLE_STATE_DIR or $XDG_STATE_HOME/castle. */
  state: string;
  /** Persistent system state (upper dirs): $CASTLE_DATA_DIR or $XDG_DATA_HOME/castle. */
  data: string;
}

export function castlePaths(env: NodeJS.ProcessEnv = process.env): CastlePaths {
  const home = env.HOME || homedir();
  return {
    store: defaultStoreRoot(env),
    state: env.CASTLE_STATE_DIR || join(env.XDG_STATE_HOME || join(home, ".local/state"), "castle"),
    data: env.CASTLE_DATA_DIR || join(env.XDG_DATA_HOME || join(home, ".local/share"), "castle"),
  };
}

export function ensureDir(path: string): string {
  mkdirSync(path, { recursive: true });
  return path;
}
