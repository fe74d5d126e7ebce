// Owns what a compiled definition depends on besides what it reads while it runs: the files
// esbuild bundled (its metafile lists them), the castle.ts path as the user named it (a symlinked
// directory may point elsewhere later), the directories holding them (a file added beside an
// import can change what it resolves to), and the files esbuild consults on the way up from
// each of them (tsconfig.json, jsconfig.json, package.json; node_modules when packages were
// bundled) — each with its stat identity, or "absent".

import { dirname, join } from "node:path";
import { statIdentity, type FileRead } from "./stat-identity";

const CONFIG_FILES = ["tsconfig.json", "jsconfig.json", "package.json"];

/** The reads a bundle's compilation made, as they are now (call right after compiling or reusing it). */
export function bundleReads(definitionFile: string, inputs: readonly string[]): FileRead[] {
  const reads = new Map<string, FileRead>();
  const add = (path: string) => {
    if (!reads.has(path)) reads.set(path, { path, follow: true, identity: statIdentity(path, true) });
  };
  add(definitionFile);
  for (const input of inputs) add(input);
  const packages = inputs.some((input) => input.includes("/node_modules/"));
  const seen = new Set<string>();
  for (const input of inputs) {
    add(dirname(input));
    for (let dir = dirname(input); !seen.has(dir); dir = dirname(dir)) {
      seen.add(dir);
      for (const name of CONFIG_FILES) add(join(dir, name));
      if (packages) add(join(dir, "node_modules"));
      if (dir === "/") break;
    }
  }
  return [...reads.values()];
}
