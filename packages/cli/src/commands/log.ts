// Owns `castle log <layer>`: a layer's build log, found through the recorded runs (the newest run
// that built it, or knew its key, unless --run picks one) — the store keeps logs under hashed
// names. With --follow, a build still running is followed until it ends.

import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { openStore } from "@castle/cache/store";
import { CastleError } from "@castle/errors";
import { processAlive } from "@castle/sandbox";
import { didYouMean } from "@castle/graph";
import { EXIT } from "../context/exit-codes";
import { parseCommand } from "../context/options";
import { castlePaths } from "../context/paths";
import { UsageError } from "../context/usage-error";
import { listRuns, readRun, type RecordedRun } from "../history/run-file";
import { selectRun } from "../history/select-run";
import { timelineOf, type LayerTimeline, type RunTimeline } from "../history/timeline";

const HELP = `usage: castle log <layer> [--system NAME] [--run last|N|ID] [-f|--follow]

Prints the build log of a layer: from the newest recorded run that knew the layer's key (the
run that built it, or one that found it in the cache), or from the run --run names. With
--follow, a layer that is building right now is followed until its build ends.

examples:
  castle log musl
  castle log busybox --system distro --run 2
  castle log musl -f                        # while \`castle run\` builds it in another terminal

options:
  --system NAME                       only runs of this system
  --run last|N|ID                     this run (see \`castle history\`)
  -f, --follow                        keep printing while the layer builds
  -h, --help                          this help
`;

const POLL_MS = 200;

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    { system: { type: "string" }, run: { type: "string" }, follow: { type: "boolean", short: "f" }, help: { type: "boolean", short: "h" } },
    "log",
  );
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  const [name, ...extra] = positionals;
  if (name === undefined) throw new UsageError("which layer? give its name", "log");
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`, "log");
  const stateDir = castlePaths().state;
  const choice = { ...(values.system ? { system: values.system } : {}), ...(values.run ? { run: values.run } : {}) };
  const found = values.run !== undefined ? inRun(selectRun(stateDir, choice), name) : newestWith(stateDir, name, values.system);
  const store = openStore(castlePaths().store);
  if (values.follow && running(found.timeline) && found.layer.endedAt === undefined) {
    return follow(found, name, (key) => store.logPath(key));
  }
  const path = logPathOf(found.layer, (key) => store.logPath(key));
  if (!path || !existsSync(path)) {
    throw new CastleError("CASTLE_LOG_MISSING", `the build log of ${name}${found.layer.key ? ` (key ${found.layer.key.slice(0, 12)})` : ""} is not in the store`, {
      data: { layer: name, key: found.layer.key, path },
      hint: found.layer.key ? `it was pruned; \`castle build … --rebuild ${name}\` builds it again with a new log` : `${name} was never built in a recorded run`,
    });
  }
  copyToStdout(path, 0);
  return EXIT.ok;
}

type Found = { timeline: RunTimeline; layer: LayerTimeline; file: string };

function inRun(run: RecordedRun, name: string): Found {
  const timeline = timelineOf(run);
  const layer = timeline.layers.find((l) => l.name === name);
  if (!layer) {
    throw new UsageError(`run ${timeline.header.id} of ${timeline.header.system} has no layer "${name}"${didYouMean(name, timeline.layers.map((l) => l.name))}`, "log");
  }
  return { timeline, layer, file: run.file };
}

/** The newest run in which the layer has a key (or is building now). */
function newestWith(stateDir: string, name: string, system: string | undefined): Found {
  const known = new Set<string>();
  for (const { file } of listRuns(stateDir, system)) {
    const timeline = timelineOf(readRun(file));
    const layer = timeline.layers.find((l) => l.name === name);
    for (const l of timeline.layers) known.add(l.name);
    if (layer && (layer.key !== undefined || layer.logPath !== undefined || (running(timeline) && layer.endedAt === undefined))) return { timeline, layer, file };
  }
  throw new CastleError("CASTLE_RUN_NOT_FOUND", `no recorded run${system ? ` of ${system}` : ""} built or found a layer named "${name}"${didYouMean(name, known)}`, {
    hint: "see `castle history`; runs are recorded once they fetch, pull or build something",
  });
}

function logPathOf(layer: LayerTimeline, logPath: (key: string) => string): string | undefined {
  return layer.logPath ?? (layer.key ? logPath(layer.key) : undefined);
}

/** A run whose process is alive and that has not finished. */
function running(timeline: RunTimeline): boolean {
  return !timeline.result && processAlive(timeline.header.pid);
}

/** Prints the log as it grows until the layer's build ends (or its run stops). */
async function follow(found: Found, name: string, logPath: (key: string) => string): Promise<number> {
  const { header } = found.timeline;
  let printed = 0;
  let waitingSaid = false;
  for (;;) {
    const now = timelineOf(readRun(found.file));
    const layer = now.layers.find((l) => l.name === name);
    const path = layer ? logPathOf(layer, logPath) : undefined;
    if (path && existsSync(path)) printed = copyToStdout(path, printed);
    else if (!waitingSaid) {
      process.stderr.write(`castle: ${name} has not started building yet in run ${header.id}; waiting…\n`);
      waitingSaid = true;
    }
    if (layer?.endedAt !== undefined || !running(now)) {
      if (path && existsSync(path)) copyToStdout(path, printed);
      return EXIT.ok;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** Writes the file from byte `from` to stdout; returns the new end. */
function copyToStdout(path: string, from: number): number {
  const size = statSync(path).size;
  if (size <= from) return from;
  const fd = openSync(path, "r");
  try {
    const buffer = Buffer.alloc(1 << 16);
    let at = from;
    while (at < size) {
      const n = readSync(fd, buffer, 0, Math.min(buffer.length, size - at), at);
      if (n <= 0) break;
      process.stdout.write(buffer.subarray(0, n));
      at += n;
    }
    return at;
  } finally {
    closeSync(fd);
  }
}
