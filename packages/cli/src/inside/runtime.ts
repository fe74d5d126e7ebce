// Owns finding Castle's runtime: the directory scripts/build-runtime.mjs assembles (node with its
// own loader and libraries, the bundle, esbuild, the C helpers) that `castle run` mounts
// read-only at CASTLE_MOUNT in every system, so that `castle` works inside whatever its libc.
// On the host it sits beside the bundle (packages/cli/runtime next to packages/cli/dist); inside
// a system the running bundle is the runtime's own (/.castle/dist), so its parent is the runtime
// and a nested Castle mounts that same directory one level further down.

import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Where every system sees the runtime (scripts/build-runtime.mjs builds it for this place). */
export const CASTLE_MOUNT = "/.castle";
/** Inside the runtime: mount points for the nested Castle's own dirs and the outer stores. */
export const NESTED_STATE = `${CASTLE_MOUNT}/state`;
export const LOWER_STORE_MOUNTS = 8;
export const lowerStoreMount = (i: number): string => `${CASTLE_MOUNT}/stores/${i}`;
/** The command inside, and a link to it in a directory every shell's PATH has. */
export const CASTLE_COMMAND = `${CASTLE_MOUNT}/bin/castle`;
export const CASTLE_LINK = "/usr/local/bin/castle";

/** The file that marks a directory as a runtime. */
export const RUNTIME_MARKER = "castle-runtime.json";

/** The runtime directory, or undefined when this Castle has none (patchelf was missing at build). */
export function locateRuntime(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.CASTLE_RUNTIME_DIR) return existsSync(join(env.CASTLE_RUNTIME_DIR, RUNTIME_MARKER)) ? env.CASTLE_RUNTIME_DIR : undefined;
  const here = dirname(fileURLToPath(import.meta.url));
  // dist/.. inside the runtime; dist/../runtime beside the bundle; src/inside/../../runtime from source.
  for (const candidate of [join(here, ".."), join(here, "../runtime"), join(here, "../../runtime")]) {
    if (existsSync(join(candidate, RUNTIME_MARKER))) return candidate;
  }
  return undefined;
}
