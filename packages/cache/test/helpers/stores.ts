// Test helper: local stores in temp dirs holding committed layers, as a CI machine and a laptop
// would have them.

import { createHash } from "node:crypto";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { type KeyRecord, type LocalStore, openStore } from "../../src/index";
import { tempDir, writeLayer } from "./trees";

/** A store in a temp dir kept for the current test (or the whole file with scope "file"). */
export function newStore(scope: "test" | "file" = "test"): LocalStore {
  return openStore(tempDir("castle-store-", scope));
}

/** A layer key made from a label (any 64-hex string will do for the cache). */
export function keyOf(label: string): string {
  return createHash("sha256").update(`key:${label}`).digest("hex");
}

/** Commits a layer built by fill (default: writeLayer with the label as seed). */
export async function commitLayer(store: LocalStore, label: string, fill: (root: string) => void = (root) => writeLayer(root, label)): Promise<KeyRecord> {
  const staging = await store.stage(label);
  fill(staging.tree);
  return store.commit(staging, keyOf(label), { name: label, buildMs: 1, origin: "built" });
}

/** What is left in the store's staging area (should be nothing after any pull or push). */
export function stagingLeft(store: LocalStore): string[] {
  return readdirSync(join(store.root, "tmp"));
}
