// Owns the history of runs on disk: one file per run that did some work, under
// <state>/history/<system>/<id>.jsonl — a header line, then one line per recorded event (or CPU
// sample) with its time — written as the run goes, so another command can follow a run in
// progress. Ids sort by time; the newest KEEP_RUNS runs of each system are kept.

import { appendFileSync, closeSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { BuildEvent } from "@castle/graph";

/** Runs kept per system. */
export const KEEP_RUNS = 20;

export interface RunHeader {
  version: 1;
  id: string;
  system: string;
  /** How the definition was named (a directory, or url@branch (commit)). */
  definition: string;
  /** The castle command (run, build, shell...). */
  command: string;
  /** When the run began (ms since the epoch); event times count from here. */
  startedAt: number;
  /** Cores of the machine, for the timings' CPU chart. */
  cores: number;
  /** The process that wrote the run, to tell a run in progress from one that was killed. */
  pid: number;
}

/** One recorded line: an event, or how many cores were busy over the last sample period. */
export type RunLine = { t: number; event: BuildEvent } | { t: number; cpu: number };

export interface RecordedRun {
  header: RunHeader;
  file: string;
  lines: RunLine[];
}

export function historyRoot(stateDir: string): string {
  return join(stateDir, "history");
}

/** A new run id: sortable by time, unique per process. */
export function newRunId(now = Date.now(), pid = process.pid): string {
  return `${now.toString(36).padStart(9, "0")}-${pid.toString(36)}`;
}

/** Appends a run's lines to its file; the file (and its header) is made on the first append. */
export class RunFile {
  readonly file: string;
  private started = false;

  constructor(
    stateDir: string,
    readonly header: RunHeader,
  ) {
    this.file = join(historyRoot(stateDir), safeName(header.system), `${header.id}.jsonl`);
  }

  append(lines: readonly RunLine[]): void {
    let text = "";
    if (!this.started) {
      mkdirSync(join(this.file, ".."), { recursive: true });
      text += `${JSON.stringify(this.header)}\n`;
      this.started = true;
    }
    for (const line of lines) text += `${JSON.stringify(line)}\n`;
    if (text) appendFileSync(this.file, text);
  }
}

/** The headers of recorded runs (of one system, or all), newest first. */
export function listRuns(stateDir: string, system?: string): { header: RunHeader; file: string }[] {
  const root = historyRoot(stateDir);
  const systems = system === undefined ? readdirQuiet(root) : [safeName(system)];
  const runs: { header: RunHeader; file: string }[] = [];
  for (const name of systems) {
    const dir = join(root, name);
    for (const entry of readdirQuiet(dir)) {
      if (!entry.endsWith(".jsonl")) continue;
      const header = readHeader(join(dir, entry));
      if (header) runs.push({ header, file: join(dir, entry) });
    }
  }
  return runs.sort((a, b) => b.header.id.localeCompare(a.header.id));
}

/** A whole recorded run; lines cut off by a crash at the end are left out. */
export function readRun(file: string): RecordedRun {
  const [first = "", ...rest] = readFileSync(file, "utf8").split("\n");
  const header = JSON.parse(first) as RunHeader;
  const lines: RunLine[] = [];
  for (const text of rest) {
    if (!text) continue;
    try {
      lines.push(JSON.parse(text) as RunLine);
    } catch {
      // A line half-written when the process died.
    }
  }
  return { header, file, lines };
}

/** Removes all but the newest `keep` runs of a system. */
export function pruneRuns(stateDir: string, system: string, keep = KEEP_RUNS): void {
  for (const { file } of listRuns(stateDir, system).slice(keep)) rmSync(file, { force: true });
}

/** A system name as a directory name (names are already restricted, but never trust a path). */
function safeName(system: string): string {
  return system.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^\.+/, "_");
}

function readHeader(file: string): RunHeader | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(file, "r");
    const buffer = Buffer.alloc(4096);
    const n = readSync(fd, buffer, 0, buffer.length, 0);
    const line = buffer.toString("utf8", 0, n).split("\n")[0] ?? "";
    const header = JSON.parse(line) as RunHeader;
    return header.version === 1 ? header : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function readdirQuiet(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
