// Owns `castle history`: the recorded runs, newest first (what each built, pulled, found in the
// cache, how long it took), and the timings page of one of them (--timings).

import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { EXIT } from "../context/exit-codes";
import { noPositionals, parseCommand } from "../context/options";
import { castlePaths } from "../context/paths";
import { KEEP_RUNS, listRuns, readRun } from "../history/run-file";
import { ago, selectRun } from "../history/select-run";
import { timelineOf, type RunTimeline } from "../history/timeline";
import { timingsHtml } from "../history/timings-html";
import { formatDuration } from "../ui/format";

const HELP = `usage: castle history [--system NAME] [--json]
       castle history --timings [--run last|N|ID] [--system NAME] [-o FILE]

Lists the recorded runs, newest first: runs that fetched, pulled or built something (a fully
cached run is not recorded), the last ${KEEP_RUNS} of each system. With --timings, writes a run's timeline as a
self-contained HTML page (each layer's waiting, fetching, pulling and building, the critical
path, the cores in use) and prints its path.

examples:
  castle history
  castle why --run 2                        # what the second newest run did, and why
  castle history --timings -o timings.html  # the last run's timeline

options:
  --system NAME                       only runs of this system
  --run last|N|ID                     with --timings: this run (default: the last)
  --timings                           write the timings page of a run
  -o, --output FILE                   where --timings writes (default: beside the run's record)
  --json                              the list as JSON
  -h, --help                          this help
`;

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    {
      system: { type: "string" }, run: { type: "string" }, timings: { type: "boolean" }, output: { type: "string", short: "o" },
      json: { type: "boolean" }, help: { type: "boolean", short: "h" },
    },
    "history",
  );
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  noPositionals(positionals, "history");
  const stateDir = castlePaths().state;
  if (values.timings) {
    const run = selectRun(stateDir, { ...(values.system ? { system: values.system } : {}), ...(values.run ? { run: values.run } : {}) });
    const page = values.output ? resolve(values.output) : run.file.replace(/\.jsonl$/, ".html");
    writeFileSync(page, timingsHtml(timelineOf(run)));
    process.stdout.write(`${page}\n`);
    return EXIT.ok;
  }
  const runs = listRuns(stateDir, values.system).map(({ file }) => timelineOf(readRun(file)));
  if (values.json) {
    process.stdout.write(JSON.stringify(runs.map(summary), null, 2) + "\n");
    return EXIT.ok;
  }
  if (runs.length === 0) {
    process.stdout.write("no runs recorded yet (a run is recorded once it fetches, pulls or builds something)\n");
    return EXIT.ok;
  }
  runs.forEach((run, i) => {
    const s = summary(run);
    const counts = Object.entries(s.layers).filter(([, n]) => n > 0).map(([outcome, n]) => `${n} ${outcome}`).join(", ");
    process.stdout.write(
      `${String(i + 1).padStart(2)}  ${s.id}  ${ago(s.startedAt).padEnd(12)} ${s.system.padEnd(14)} ${s.command.padEnd(6)} ${s.outcome.padEnd(10)} ${formatDuration(s.wallMs).padStart(6)}  ${counts}\n`,
    );
  });
  return EXIT.ok;
}

function summary(run: RunTimeline) {
  const layers: Record<string, number> = { built: 0, imported: 0, pulled: 0, cached: 0, failed: 0, skipped: 0 };
  for (const layer of run.layers) if (layer.outcome in layers) layers[layer.outcome]!++;
  const outcome = run.result ? (run.result.ok ? "ok" : "failed") : "unfinished";
  return {
    id: run.header.id, system: run.header.system, command: run.header.command, definition: run.header.definition,
    startedAt: run.header.startedAt, wallMs: run.endedAt, outcome, layers,
  };
}
