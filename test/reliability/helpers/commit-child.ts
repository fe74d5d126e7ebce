// Test helper: a process that commits layers into a store in a loop, forever, until it is
// killed — so a test can kill -9 it at random points of staging, digesting, placing a tree and
// writing a record. Prints "ready" once, then "committed <n>" after each commit.
// Usage: node --import tsx commit-child.ts <storeDir> <seed>

import { createHash } from "node:crypto";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openStore } from "@castle/cache";

const [root, seedText] = process.argv.slice(2);
if (!root || !seedText) throw new Error("usage: commit-child.ts <storeDir> <seed>");
const store = openStore(root);
const seed = Number(seedText);
process.stdout.write("ready\n");
for (let n = 0; ; n++) {
  // Every third layer repeats an earlier one's content (its tree is already stored: record only).
  const content = n % 3 === 2 ? n - 1 : n;
  const staging = await store.stage(`layer-${n}`);
  const dir = join(staging.tree, "usr/share/data");
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < 400; i++) writeFileSync(join(dir, `f${i}`), `${seed}:${content}:${i}\n`.repeat(20));
  writeFileSync(join(staging.tree, "big"), Buffer.alloc(2 << 20, content % 251));
  symlinkSync("usr/share/data/f0", join(staging.tree, "link"));
  const key = createHash("sha256").update(`commit-child:${seed}:${n}`).digest("hex");
  await store.commit(staging, key, { name: `layer-${n}`, buildMs: 1, origin: "built" });
  process.stdout.write(`committed ${n}\n`);
}
