// Guards the one rule of the repository's shape: imports flow cli → graph → cache → sandbox →
// errors, never back. Every @castle/* import in a package's sources must name a package below
// it, and be declared in its package.json (a workspace link that only works by accident breaks
// a clean install).

import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
/** Top to bottom: a package may import only the ones after it. */
const ORDER = ["cli", "graph", "cache", "sandbox", "errors"];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && /\.tsx?$/.test(entry.name))
    .map((entry) => join(entry.parentPath, entry.name));
}

function castleImports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/(?:from|import)\s*\(?\s*["']@castle\/([a-z]+)["']/g)].map((m) => m[1]!);
}

describe("package layering", () => {
  for (const [level, name] of ORDER.entries()) {
    it(`@castle/${name} imports only the packages below it, each declared`, () => {
      const below = ORDER.slice(level + 1);
      const declared = Object.keys(JSON.parse(readFileSync(join(ROOT, "packages", name, "package.json"), "utf8")).dependencies ?? {})
        .filter((dep) => dep.startsWith("@castle/"))
        .map((dep) => dep.slice("@castle/".length));
      const wrong: string[] = [];
      const used = new Set<string>();
      for (const file of sources(join(ROOT, "packages", name, "src"))) {
        for (const target of castleImports(file)) {
          used.add(target);
          if (!below.includes(target)) wrong.push(`${file.slice(ROOT.length + 1)} imports @castle/${target}`);
        }
      }
      expect(wrong).toEqual([]);
      expect([...used].filter((target) => !declared.includes(target))).toEqual([]);
    });
  }
});
