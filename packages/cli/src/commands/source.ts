// Owns `castle source`: put a declared source's files (as pinned, overrides ignored) in a local
// directory, ready to patch and to build with through CASTLE_OVERRIDE_<name>.

import { chmodSync, cpSync, existsSync, readdirSync } from "node:fs";
import { resolve } from "node:path";
import { CastleError } from "@castle/errors";
import { normaliseSourceName, realizeSource, rememberLocalTree } from "@castle/graph";
import { EXIT } from "../context/exit-codes";
import { parseCommand, sourceEnv, SYSTEM_OPTIONS, systemFlags } from "../context/options";
import { prepareSystem } from "../context/prepare";
import { UsageError } from "../context/usage-error";

const HELP = `usage: castle source <git-url|dir> [branch] [subdir] --name <source> --out <dir>

Fetches a source the system declares (verifying its pin) and copies its files into <dir>, which
must be new or empty. Edit them, then build with the copy instead of the pinned source.

examples:
  castle source . --name musl-src --out ./musl
  $EDITOR ./musl/src/exit/_Exit.c
  CASTLE_OVERRIDE_musl_src=./musl castle run .

With no --name, lists the system's sources.
`;

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    { name: { type: "string" }, out: { type: "string", short: "o" }, offline: { type: "boolean" }, help: { type: "boolean", short: "h" } },
    "source",
  );
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  const flags = systemFlags({ offline: values.offline }, process.env, "source");
  const prepared = await prepareSystem(positionals, { ...flags, overrides: {} }, "source");
  if (values.name === undefined) {
    for (const [name, source] of prepared.graph.sources) {
      const spec = source.spec;
      const where = spec.type === "http" ? spec.url : spec.type === "git" ? `${spec.url} ${spec.commit}` : spec.type === "local" ? spec.dir : "inline";
      process.stdout.write(`${name}\t${spec.type}\t${where}\n`);
    }
    return EXIT.ok;
  }
  const wanted = normaliseSourceName(values.name);
  const source = [...prepared.graph.sources.values()].find((s) => normaliseSourceName(s.name) === wanted);
  if (!source) {
    throw new CastleError("CASTLE_OVERRIDE_UNKNOWN", `system ${prepared.graph.system.name} has no source "${values.name}"`, {
      hint: `its sources are: ${[...prepared.graph.sources.keys()].join(", ") || "(none)"}`,
    });
  }
  if (!values.out) throw new UsageError("--out <dir> is required with --name", "source");
  const out = resolve(values.out);
  if (existsSync(out) && readdirSync(out).length > 0) throw new UsageError(`${out} exists and is not empty`, "source");
  const digest = await realizeSource(source, { store: prepared.store, overrides: new Map(), env: sourceEnv(flags.config) });
  cpSync(prepared.store.treePath(digest), out, { recursive: true, verbatimSymlinks: true });
  // The store's tree is sealed (its own directory read-only); the user's checkout is theirs to edit.
  chmodSync(out, 0o755);
  // Built with as an override later, its unchanged files are linked from that tree, not copied.
  rememberLocalTree(prepared.store, out, digest);
  process.stdout.write(`${out}\n`);
  process.stderr.write(`build with it: CASTLE_OVERRIDE_${normaliseSourceName(source.name)}=${values.out} castle run ${positionals.join(" ")}\n`);
  return EXIT.ok;
}
