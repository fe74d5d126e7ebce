// Owns telling a live process from a dead one whose pid was reused: a process is known by its pid
// and its start time (field 22 of /proc/<pid>/stat, clock ticks since boot).

import { readFileSync } from "node:fs";

/**
 * When pid started, or undefined when it is gone or a zombie (it has exited: a castle killed with
 * SIGKILL leaves its sandbox helper a zombie until whoever inherits it reaps it).
 */
export function processStart(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") return undefined;
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}

/** True while the process that had this pid and start time runs (start 0: any process with pid). */
export function processLives(pid: number, start: number): boolean {
  const now = processStart(pid);
  return now !== undefined && (start === 0 || now === start);
}
