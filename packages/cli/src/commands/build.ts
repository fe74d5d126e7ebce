// Owns `castle build`: build or fetch every layer of a system, and print the system's digest
// (the hash of its layers' output digests, bottom first) — the same digest on every machine.

import { createHash } from "node:crypto";
import { EXIT } from "../context/exit-codes";
import { parseCommand, SYSTEM_OPTIONS, SYSTEM_OPTIONS_HELP, systemFlags } from "../context/options";
import { buildPrepared, prepareSystem } from "../context/prepare";

const HELP = `usage: castle build <git-url|dir> [branch] [subdir] [options]

Builds or fetches every layer the system needs and prints the system's digest.

examples:
  castle build ./my-system
  castle build . --export-cache s3://team-cache/castle      # CI: share what was built
  castle build . --import-cache s3://team-cache/castle -j 4

options:
${SYSTEM_OPTIONS_HELP}
  --json                              print layers, keys and digests as JSON
`;

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, { ...SYSTEM_OPTIONS, json: { type: "boolean" } }, "build");
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  const prepared = await prepareSystem(positionals, systemFlags(values, process.env, "build"), "build", true);
  const outcome = await buildPrepared(prepared);
  const digest = createHash("sha256").update(outcome.layers.map((l) => l.record.digest).join("\n")).digest("hex");
  if (values.json) {
    const layers = outcome.layers.map((l) => ({ name: l.name, key: l.key, digest: l.record.digest, bytes: l.record.bytes }));
    process.stdout.write(JSON.stringify({ system: prepared.graph.system.name, digest, layers, stats: outcome.stats }, null, 2) + "\n");
  } else {
    process.stdout.write(`${digest}\n`);
  }
  return EXIT.ok;
}
