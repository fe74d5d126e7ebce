// Owns how long each layer of a system took in its recorded runs, for a build whose store does
// not know (the store keeps each layer's last build time beside its record; a new or wiped store
// has none, but the history, in the state dir, survives that): the newest run that built (or
// imported) a layer says how long its work took.

import { listRuns, readRun } from "./run-file";
import { timelineOf } from "./timeline";

/** Runs read, newest first, to find a time for every layer. */
const RUNS_READ = 5;

export function recordedTimes(stateDir: string, system: string): Map<string, number> {
  const times = new Map<string, number>();
  for (const { file } of listRuns(stateDir, system).slice(0, RUNS_READ)) {
    for (const layer of timelineOf(readRun(file)).layers) {
      if (times.has(layer.name) || (layer.outcome !== "built" && layer.outcome !== "imported")) continue;
      if (layer.workFrom !== undefined && layer.endedAt !== undefined && layer.endedAt > layer.workFrom) times.set(layer.name, layer.endedAt - layer.workFrom);
    }
  }
  return times;
}
