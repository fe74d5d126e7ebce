// Owns picking a recorded run from what a user types: nothing or "last" (the newest), a number
// (1 = the newest, 2 = the one before...), or the start of a run's id; of one system or of all.

import { CastleError } from "@castle/errors";
import { listRuns, readRun, type RecordedRun } from "./run-file";

export interface RunChoice {
  /** Only runs of this system. */
  system?: string;
  /** "last", a 1-based number from the newest, or the start of an id. Default "last". */
  run?: string;
}

export function selectRun(stateDir: string, choice: RunChoice): RecordedRun {
  const runs = listRuns(stateDir, choice.system);
  const of = choice.system ? ` of system ${choice.system}` : "";
  if (runs.length === 0) {
    throw new CastleError("CASTLE_RUN_NOT_FOUND", `no runs${of} are recorded yet`, {
      hint: "a run is recorded once it fetches, pulls or builds something (castle build --timings records any run)",
    });
  }
  const wanted = choice.run ?? "last";
  let found: (typeof runs)[number] | undefined;
  if (wanted === "last") found = runs[0];
  else if (/^\d+$/.test(wanted)) found = runs[Number(wanted) - 1];
  else {
    const matches = runs.filter((r) => r.header.id.startsWith(wanted));
    if (matches.length > 1) {
      throw new CastleError("CASTLE_RUN_NOT_FOUND", `run id "${wanted}" is ambiguous${of}: ${matches.map((r) => r.header.id).join(", ")}`, {
        hint: `give more of the id (see \`castle history\`)`,
      });
    }
    found = matches[0];
  }
  if (!found) {
    throw new CastleError("CASTLE_RUN_NOT_FOUND", `there is no run "${wanted}"${of}: ${runs.length} ${runs.length === 1 ? "is" : "are"} recorded`, {
      hint: "see `castle history` for the runs, newest first",
    });
  }
  return readRun(found.file);
}

/** "3 minutes ago", "2 hours ago", "yesterday": how long ago a run began. */
export function ago(startedAt: number, now = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - startedAt) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.round(hours / 24)} days ago`;
}
