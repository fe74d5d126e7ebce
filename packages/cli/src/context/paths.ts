// Owns where Castle keeps things on the user's machine, the XDG way: the store (cache), running
// instances (state), and each system's persistent upper dir (data). Each can be overridden; when
// one cannot be made (HOME missing or not the user's, as for a service account), the error names
// the variables that move it.

import { mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { CastleError, isCastleError } from "@castle/errors";
import { openStore, defaultStoreRoot, lowerStoreRoots, type LocalStore, type StoreOptions } from "@castle/cache/store";

export interface CastlePaths {
  /** The content-addressed store: $CASTLE_CACHE_DIR or $XDG_CACHE_HOME/castle. */
  store: string;
  /** Read-only stores beneath it ($CASTLE_STORE_LOWERS, set inside a system: the outer stores). */
  storeLowers: string[];
  /** Running instances: $CASTLE_STATE_DIR or $XDG_STATE_HOME/castle. */
  state: string;
  /** Persistent system state (upper dirs): $CASTLE_DATA_DIR or $XDG_DATA_HOME/castle. */
  data: string;
}

export function castlePaths(env: NodeJS.ProcessEnv = process.env): CastlePaths {
  const home = env.HOME || homedir();
  return {
    store: defaultStoreRoot(env),
    storeLowers: lowerStoreRoots(env),
    state: env.CASTLE_STATE_DIR || join(env.XDG_STATE_HOME || join(home, ".local/state"), "castle"),
    data: env.CASTLE_DATA_DIR || join(env.XDG_DATA_HOME || join(home, ".local/share"), "castle"),
  };
}

/** The hint of every error about Castle's own directories: which variables move each one. */
export const DIRS_HINT =
  "set CASTLE_CACHE_DIR (the store), CASTLE_STATE_DIR (running instances) and CASTLE_DATA_DIR (systems' files) " +
  "to directories you can write — or XDG_CACHE_HOME, XDG_STATE_HOME and XDG_DATA_HOME, or HOME";

/**
 * Opens the store at its usual place, with its lower tiers (inside a system: the outer stores); a
 * store directory that cannot be made is a clear error.
 */
export function openCastleStore(options: StoreOptions = {}): LocalStore {
  const { store: root, storeLowers } = castlePaths();
  try {
    return openStore(root, { lowers: storeLowers, ...options });
  } catch (error) {
    if (isCastleError(error) && error.code === "CASTLE_DIR_UNUSABLE") {
      throw new CastleError(error.code, error.message, { cause: error.cause, data: error.data, hint: DIRS_HINT });
    }
    throw error;
  }
}

/** Creates dir (a "state" or "data" directory, or one beneath them) and returns it. */
export function ensureDir(path: string, kind: "state" | "data" = "state"): string {
  try {
    mkdirSync(path, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "EACCES" || code === "EPERM" ? "permission denied" : code === "EROFS" ? "read-only file system" : (error as Error).message;
    throw new CastleError("CASTLE_DIR_UNUSABLE", `cannot create the ${kind} directory ${path}: ${why}`, {
      cause: error, data: { dir: path, kind }, hint: DIRS_HINT,
    });
  }
  return path;
}
