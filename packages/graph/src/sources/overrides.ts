// Owns overrides: CASTLE_OVERRIDE_<name>=<dir> and `--override name=dir` replace a declared
// source by a local directory (for hacking on a dependency), and the name normalisation they use.

import { statSync } from "node:fs";
import { resolve } from "node:path";
import { SOURCE_BRAND, type Source } from "../types";
import { SourceError } from "./errors";

const ENV_PREFIX = "CASTLE_OVERRIDE_";

/** The name overrides compare: lower-cased, "-" → "_" ("Musl-Src" → "musl_src"). */
export function normaliseSourceName(name: string): string {
  return name.toLowerCase().replace(/-/g, "_");
}

/**
 * Reads overrides from `CASTLE_OVERRIDE_<name>` variables and CLI pairs (which win over the
 * environment). Relative dirs are resolved against the current directory; empty values are
 * ignored. A dir that is missing or not a directory is a CASTLE_OVERRIDE_MISSING error naming
 * the variable or option.
 */
export function parseOverrides(env: NodeJS.ProcessEnv, cli: Record<string, string> = {}): Map<string, string> {
  const out = new Map<string, string>();
  const add = (name: string, dir: string, origin: string) => {
    if (name === "" || dir === "") return;
    const absolute = resolve(process.cwd(), dir);
    let isDir = false;
    try {
      isDir = statSync(absolute).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir) {
      throw new SourceError(
        "CASTLE_OVERRIDE_MISSING",
        `${origin} points at ${absolute}, which is not a directory; create it or drop the override`,
        { data: { origin, name: normaliseSourceName(name), dir: absolute } },
      );
    }
    out.set(normaliseSourceName(name), absolute);
  };
  for (const [key, value] of Object.entries(env).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (key.startsWith(ENV_PREFIX) && value !== undefined) add(key.slice(ENV_PREFIX.length), value, key);
  }
  for (const [name, dir] of Object.entries(cli)) add(name, dir, `--override ${name}=${dir}`);
  return out;
}

/** The source that is really used: a local source on the override dir, or the source itself. */
export function effectiveSource(source: Source, overrides: Map<string, string>): { source: Source; overriddenBy?: string } {
  const dir = overrides.get(normaliseSourceName(source.name));
  if (dir === undefined) return { source };
  const local = {
    [SOURCE_BRAND]: true as const,
    name: source.name,
    spec: { type: "local" as const, dir, ignore: [".git"] },
  };
  // Read on demand, like the original's: formatting a site decodes the definition's source map.
  Object.defineProperty(local, "definedAt", { get: () => source.definedAt, enumerable: true });
  return { source: Object.freeze(local) as Source, overriddenBy: dir };
}
