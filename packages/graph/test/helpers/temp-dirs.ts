// Test helper: temp directories removed after each test, and a fresh store with a SourceContext.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore, removeTree, type Store } from "@castle/cache";
import { afterEach } from "vitest";
import type { SourceContext } from "../../src/sources/index";

export function useTempDirs(): (label?: string) => string {
  const made: string[] = [];
  afterEach(() => {
    for (const dir of made.splice(0)) removeTree(dir);
  });
  return (label = "src") => {
    const dir = mkdtempSync(join(tmpdir(), `castle-${label}-`));
    made.push(dir);
    return dir;
  };
}

export function sourceContext(store: Store, extra: Partial<SourceContext> = {}): SourceContext {
  return { store, overrides: new Map(), env: { PATH: process.env.PATH }, ...extra };
}

export function tempStore(temp: (label?: string) => string): Store {
  return openStore(temp("store"));
}
