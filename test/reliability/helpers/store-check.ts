// Test helper: checks a local store against Castle's promise that nothing partial is ever
// visible — every record parses, names its own key and points at a tree that exists and digests
// to the record's digest; every tree digests to its own name; and, when the store is at rest,
// nothing is left in tmp/ and no temp file lingers beside the records. Read-only: unlike
// verifyStore it never repairs, so it can judge what a crash left behind.

import { existsSync, lstatSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { digestTree } from "@castle/cache";

const HEX64 = /^[0-9a-f]{64}$/;

export interface StoreCheckOptions {
  /** Whether leftovers in tmp/ and temp files in keys/ count (they do once a clean run finished). Default true. */
  atRest?: boolean;
  /** Trees already found intact by an earlier check of this store (trees never change once
   * placed, so a loop need not digest them again); filled in as trees check out. */
  verified?: Set<string>;
}

export interface StoreReport {
  problems: string[];
  records: number;
  trees: number;
}

/** Everything wrong with the store at root; problems is empty for a consistent store. */
export function checkStore(root: string, options: StoreCheckOptions = {}): StoreReport {
  const atRest = options.atRest ?? true;
  const problems: string[] = [];
  const treeDigests = new Map<string, string | Error>();
  const digestOf = (digest: string): string | Error => {
    if (options.verified?.has(digest)) return digest;
    let known = treeDigests.get(digest);
    if (known === undefined) {
      try {
        known = digestTree(join(root, "trees", digest)).digest;
      } catch (error) {
        known = error as Error;
      }
      treeDigests.set(digest, known);
      if (known === digest) options.verified?.add(digest);
    }
    return known;
  };
  const list = (dir: string) => (existsSync(join(root, dir)) ? readdirSync(join(root, dir)) : []);

  const trees = list("trees");
  for (const name of trees) {
    if (!HEX64.test(name)) {
      problems.push(`trees/${name}: not a digest`);
      continue;
    }
    if (!lstatSync(join(root, "trees", name)).isDirectory()) {
      problems.push(`trees/${name}: not a directory`);
      continue;
    }
    const actual = digestOf(name);
    if (actual !== name) problems.push(`trees/${name}: digests to ${actual instanceof Error ? actual.message : actual}`);
  }

  let records = 0;
  for (const name of list("keys")) {
    if (!name.endsWith(".json")) {
      if (atRest) problems.push(`keys/${name}: left behind beside the records`);
      continue;
    }
    records++;
    const key = name.slice(0, -5);
    let record: { key?: unknown; digest?: unknown };
    try {
      record = JSON.parse(readFileSync(join(root, "keys", name), "utf8")) as typeof record;
    } catch (error) {
      problems.push(`keys/${name}: not a JSON record (${(error as Error).message})`);
      continue;
    }
    if (record.key !== key) problems.push(`keys/${name}: names key ${String(record.key)}`);
    if (typeof record.digest !== "string" || !HEX64.test(record.digest)) {
      problems.push(`keys/${name}: no valid digest`);
      continue;
    }
    if (!existsSync(join(root, "trees", record.digest))) problems.push(`keys/${name}: its tree ${record.digest} is missing`);
    else if (digestOf(record.digest) !== record.digest) problems.push(`keys/${name}: its tree ${record.digest} does not digest correctly`);
  }

  if (atRest) {
    for (const name of list("tmp")) problems.push(`tmp/${name}: left behind`);
    for (const name of list("downloads")) if (!HEX64.test(name)) problems.push(`downloads/${name}: partial download left behind`);
  }
  return { problems, records, trees: trees.length };
}
