// Owns `source.inline()`: files written in the definition itself.

import { posix } from "node:path";
import { SOURCE_BRAND, type Source } from "../types";
import { checkKnownOptions, checkName, optionNames } from "./checks";
import { DefinitionError } from "./errors";
import { captureSite, withSite } from "./site";

export type InlineFile = string | { content: string; mode?: number };

/**
 * Files given in the definition, by relative path. A string is a file with mode 0644.
 *
 * @example
 * const etc = source.inline({ "hostname": "castle\n", "bin/hello": { content: "#!/bin/sh\necho hi\n", mode: 0o755 } });
 */
export interface InlineSourceOptions {
  /** Name for overrides. Default "inline". */
  name?: string;
}

const INLINE_OPTIONS = optionNames<InlineSourceOptions>()(["name"]);

export function inlineSource(files: Record<string, InlineFile>, options: InlineSourceOptions = {}): Source {
  const site = captureSite();
  checkKnownOptions(options, INLINE_OPTIONS, "source.inline", site);
  if (typeof files !== "object" || files === null) {
    throw new DefinitionError("source.inline takes an object of files", site);
  }
  const out: Record<string, { content: string; mode: number }> = {};
  for (const [path, file] of Object.entries(files)) {
    const normal = posix.normalize(path);
    if (path === "" || normal.startsWith("/") || normal.split("/").includes("..") || normal === ".") {
      throw new DefinitionError(`source.inline: path ${JSON.stringify(path)} must be relative and stay inside`, site);
    }
    const entry = typeof file === "string" ? { content: file, mode: 0o644 } : { content: file?.content, mode: file?.mode ?? 0o644 };
    if (typeof entry.content !== "string" || !Number.isInteger(entry.mode) || entry.mode < 0 || entry.mode > 0o7777) {
      throw new DefinitionError(`source.inline: ${path} needs string content and a mode from 0 to 0o7777`, site);
    }
    out[normal] = entry;
  }
  return withSite({
    [SOURCE_BRAND]: true as const,
    name: checkName(options.name ?? "inline", "source", site),
    spec: { type: "inline" as const, files: out },
  }, site);
}
