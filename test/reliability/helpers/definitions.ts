// Test helper: definition directories (castle.ts and friends) in temp dirs any user can read,
// and a busybox rootfs shared by a test file, also readable by the unprivileged CLI user.

import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { removeTree } from "@castle/cache";
import { afterAll } from "vitest";

/** Temp dirs removed when the test file ends. */
export function useTempDirs(prefix: string): (label?: string) => string {
  const made: string[] = [];
  afterAll(() => {
    for (const dir of made.splice(0)) removeTree(dir);
  });
  return (label = "tmp") => {
    const dir = mkdtempSync(join(tmpdir(), `${prefix}-${label}-`));
    chmodSync(dir, 0o755);
    made.push(dir);
    return dir;
  };
}

/** Writes files (path → text) into a new world-readable directory and returns it. */
export function writeDefinition(parent: string, files: Record<string, string>): string {
  const dir = mkdtempSync(join(parent, "def-"));
  chmodSync(dir, 0o755);
  for (const [path, text] of Object.entries(files)) {
    const file = join(dir, path);
    mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
    writeFileSync(file, text, { mode: 0o644 });
  }
  return dir;
}

/** The 1-based line of the first line of text that contains needle. */
export function lineOf(text: string, needle: string): number {
  const index = text.split("\n").findIndex((line) => line.includes(needle));
  if (index < 0) throw new Error(`${needle} is not in the text`);
  return index + 1;
}
