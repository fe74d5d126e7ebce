// Owns `castle why`: for each layer (or one), whether it is cached locally, in the remote cache,
// must be rebuilt — and which of its inputs changed since it was last built — or waits for a
// dependency whose new output is not known yet. Over a recorded run (`--run`, or no system at
// all), what that run did to each layer and why.

import { EXIT } from "../context/exit-codes";
import { parseCommand, sourceEnv, SYSTEM_OPTIONS, SYSTEM_OPTIONS_HELP, systemFlags } from "../context/options";
import { openRemoteCaches, prepareSystem } from "../context/prepare";
import { didYouMean, planSystem, type LayerPlan } from "@castle/graph";
import { UsageError } from "../context/usage-error";
import { castlePaths } from "../context/paths";
import { runReport } from "../history/run-report";
import { selectRun } from "../history/select-run";
import { timelineOf } from "../history/timeline";

const HELP = `usage: castle why <git-url|dir> [branch] [subdir] [options] [--layer name]
       castle why [<git-url|dir> ...] --run last|N|ID [--layer name]
       castle why

Shows which layers a build would take from the cache and which it would rebuild, and why:
the inputs (script, env, sources, dependencies' outputs) that changed since the last build.
With --run (or with no system at all), what a recorded run did instead: which layers it built
and why, which it pulled, found in the cache, or skipped. Runs that fetched, pulled or built
something are recorded (see \`castle history\`).

examples:
  castle why ./my-system
  CASTLE_OVERRIDE_musl_src=./musl castle why . --layer busybox
  castle why                                  # the last recorded run, of any system
  castle why ./my-system --run 2              # the run before the last one of this system

options:
${SYSTEM_OPTIONS_HELP}
  --layer name                        only this layer
  --run last|N|ID                     a recorded run: the last, the Nth newest, or by id
  --json                              machine-readable output
`;

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    { ...SYSTEM_OPTIONS, layer: { type: "string" }, json: { type: "boolean" }, run: { type: "string" } },
    "why",
  );
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  const flags = systemFlags(values, process.env, "why");
  if (values.run !== undefined || positionals.length === 0) {
    const system = positionals.length > 0 ? (await prepareSystem(positionals, flags, "why")).graph.system.name : undefined;
    return whyRun({ ...(system ? { system } : {}), ...(values.run ? { run: values.run } : {}) }, values.layer, Boolean(values.json));
  }
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

/** What a recorded run did to each layer (or one), and why. */
function whyRun(choice: { system?: string; run?: string }, layer: string | undefined, json: boolean): number {
  const timeline = timelineOf(selectRun(castlePaths().state, choice));
  if (layer !== undefined && !timeline.layers.some((l) => l.name === layer)) {
    throw new UsageError(`run ${timeline.header.id} of ${timeline.header.system} has no layer "${layer}"${didYouMean(layer, timeline.layers.map((l) => l.name))}`, "why");
  }
  if (layer !== undefined) timeline.layers = timeline.layers.filter((l) => l.name === layer);
  if (json) process.stdout.write(JSON.stringify(timeline, null, 2) + "\n");
  else process.stdout.write(runReport(timeline).join("\n") + "\n");
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
