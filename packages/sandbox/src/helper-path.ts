// Owns finding the compiled helper binary: $CASTLE_SANDBOX_HELPER, then `castle-sandbox` next to
// the running module (the CLI bundle copies it into its dist dir), then the build output in
// packages/sandbox/helper. Nothing is cached: the answer is a couple of stat calls.

import { accessSync, constants } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { SandboxHelperMissingError } from "./errors";

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The path of the castle-sandbox binary, or a {@link SandboxHelperMissingError}
 * (code CASTLE_SANDBOX_MISSING_HELPER) listing where it looked.
 *
 * @example
 * const helper = helperPath(); // e.g. "/work/castle/packages/sandbox/helper/castle-sandbox"
 */
export function helperPath(env: NodeJS.ProcessEnv = process.env): string {
  const tried: string[] = [];
  const fromEnv = env.CASTLE_SANDBOX_HELPER;
  if (fromEnv) {
    if (executable(fromEnv)) return fromEnv;
    tried.push(fromEnv);
  }
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [join(here, "castle-sandbox"), join(here, "../helper/castle-sandbox")]) {
    if (executable(candidate)) return candidate;
    tried.push(candidate);
  }
  throw new SandboxHelperMissingError(tried);
}
