// Owns `castle why`: for each layer (or one), whether it is cached locally, in the remote cache,
// must be rebuilt — and which of its inputs changed since it was last built — or waits for a
// dependency whose new output is not known yet.

import { EXIT } from "../context/exit-codes";
import { parseCommand, sourceEnv, SYSTEM_OPTIONS, SYSTEM_OPTIONS_HELP, systemFlags } from "../context/options";
import { openRemoteCaches, prepareSystem } from "../context/prepare";
import { didYouMean, planSystem, type LayerPlan } from "@castle/graph";
import { UsageError } from "../context/usage-error";

const HELP = `usage: castle why <git-url|dir> [branch] [subdir] [options] [--layer name]

Shows which layers a build would take from the cache and which it would rebuild, and why:
the inputs (script, env, sources, dependencies' outputs) that changed since the last build.

examples:
  castle why ./my-system
  CASTLE_OVERRIDE_musl_src=./musl castle why . --layer busybox

options:
${SYSTEM_OPTIONS_HELP}
  --layer name                        only this layer
  --json                              machine-readable output
`;

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    { ...SYSTEM_OPTIONS, layer: { type: "string" }, json: { type: "boolean" } },
    "why",
  );
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  const flags = systemFlags(values, process.env, "why");
  const prepared = await prepareSystem(positionals, flags, "why");
  if (values.layer !== undefined && !prepared.graph.byName.has(values.layer)) {
    throw new UsageError(`system ${prepared.graph.system.name} has no layer "${values.layer}"${didYouMean(values.layer, prepared.graph.byName.keys())}`, "why");
  }
  const { imports } = await openRemoteCaches({ ...flags, exportCache: undefined }, prepared.store);
  const plans = (
    await planSystem(prepared.graph, {
      store: prepared.store,
      remote: imports,
      sources: { overrides: prepared.overrides, env: sourceEnv(flags.config) },
      onEvent: (e) => {
        if (e.type === "warning") process.stderr.write(`castle: warning: ${e.message}\n`);
      },
    })
  ).filter((p) => values.layer === undefined || p.layer === values.layer);
  await Promise.all(imports.map((r) => r.close()));
  if (values.json) process.stdout.write(JSON.stringify(plans, null, 2) + "\n");
  else process.stdout.write(plans.map(describe).join("\n") + "\n");
  return EXIT.ok;
}

function describe(plan: LayerPlan): string {
  switch (plan.status) {
    case "local":
      return `${plan.layer}: cached (${plan.digest.slice(0, 12)})`;
    case "remote":
      return `${plan.layer}: in the remote cache (${plan.digest.slice(0, 12)})`;
    case "merge":
      return `${plan.layer}: merge of other layers`;
    case "blocked":
      return `${plan.layer}: rebuilt if the new output of ${plan.waitingFor.join(", ")} differs`;
    case "build":
      return [`${plan.layer}: must be built — ${plan.reason.kind === "new" ? "never built" : "inputs changed"}:`, ...plan.reason.changes.map((c) => `    ${c}`)].join("\n");
    default:
      return JSON.stringify(plan);
  }
}
