// Owns `source.local()`: a directory on the user's machine, hashed by content.

import { basename, resolve } from "node:path";
import { SOURCE_BRAND, type Source } from "../types";
import { checkKnownOptions, checkName, checkStrings, optionNames } from "./checks";
import { DefinitionError } from "./errors";
import { callerDir, captureSite, withSite } from "./site";

export interface LocalSourceOptions {
  /** Patterns of paths to leave out: a name ("node_modules"), a relative path ("build/out"),
   * or a glob with * and ** ("*.o"). Default [".git"]. */
  ignore?: string[];
  /** Name for overrides. Default: the directory's name. */
  name?: string;
}

/**
 * A local directory, relative to the file that declares it. Its key is the digest of its
 * contents (paths, modes, bytes, link targets), so editing a file rebuilds what uses it.
 *
 * @example
 * const rootfs = source.local("./rootfs", { ignore: ["*.tmp"] });
 */
const LOCAL_OPTIONS = optionNames<LocalSourceOptions>()(["ignore", "name"]);

export function localSource(dir: string, options: LocalSourceOptions = {}): Source {
  const site = captureSite();
  checkKnownOptions(options, LOCAL_OPTIONS, `source.local(${typeof dir === "string" ? JSON.stringify(dir) : ""})`, site);
  if (typeof dir !== "string" || dir === "") {
    throw new DefinitionError("source.local: dir must be a non-empty path", site);
  }
  const absolute = resolve(callerDir(), dir);
  return withSite({
    [SOURCE_BRAND]: true as const,
    name: checkName(options.name ?? (basename(absolute) || "local"), "source", site),
    spec: {
      type: "local" as const,
      dir: absolute,
      ignore: options.ignore === undefined ? [".git"] : checkStrings(options.ignore, "source.local: ignore", site),
    },
  }, site);
}
