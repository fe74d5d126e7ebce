// Owns recording a run into the history (run-file.ts) as a Reporter beside the progress view:
// events with their times, thinned (no log lines; progress at most once a second per layer or
// source, plus each phase change and the last), and how many cores were busy every half second.
// Nothing is written for a run that did no work (a fully cached run stays as fast as it was):
// events are held until the first that means work and until the run knows its system's name.

import { cpus } from "node:os";
import type { BuildEvent } from "@castle/graph";
import { meansWork } from "../context/deferred-reporter";
import type { Reporter } from "../ui/reporter";
import { RunFile, newRunId, pruneRuns, type RunHeader, type RunLine } from "./run-file";

/** Progress of one layer or source is kept at most this often (its phase changes and end always). */
const PROGRESS_EVERY_MS = 1000;
const CPU_SAMPLE_MS = 500;

export interface RunIdentity {
  system: string;
  definition: string;
}

export interface RunRecorder extends Reporter {
  /** Names the run once the definition is loaded; nothing is written before. */
  identify(identity: RunIdentity): void;
  /** The run's file, once something was written to it. */
  readonly file: string | undefined;
}

export interface RecorderOptions {
  stateDir: string;
  command: string;
  /** When the run began. Default: now. */
  startedAt?: number;
  /** Record the run even if it does no work (for its timings page). */
  always?: boolean;
  now?: () => number;
}

export function createRecorder({ stateDir, command, startedAt = Date.now(), always = false, now = Date.now }: RecorderOptions): RunRecorder {
  const pending: RunLine[] = [];
  const lastProgress = new Map<string, { t: number; phase: string }>();
  let identity: RunIdentity | undefined;
  let worked = always;
  let out: RunFile | undefined;
  let closed = false;

  const flush = (): void => {
    if (!out) {
      if (!identity || !worked) return;
      const header: RunHeader = {
        version: 1, id: newRunId(startedAt), system: identity.system, definition: identity.definition, command, startedAt,
        cores: cpus().length, pid: process.pid,
      };
      out = new RunFile(stateDir, header);
    }
    out.append(pending.splice(0));
  };
  const write = (line: RunLine): void => {
    pending.push(line);
    try {
      flush();
    } catch {
      // The history is a convenience: a full or read-only state dir must not fail the build.
      pending.length = 0;
    }
  };

  // Sampled from the start (held with the events until the run is written, if it ever is).
  const sampler = startCpuSampler((busy) => write({ t: now() - startedAt, cpu: busy }));
  return {
    get file() {
      return out?.file;
    },
    identify(found) {
      identity ??= found;
      try {
        flush();
      } catch {
        pending.length = 0;
      }
    },
    onEvent(event) {
      if (closed || event.type === "log") return;
      const t = now() - startedAt;
      if (!keep(event, t, lastProgress)) return;
      if (meansWork(event)) worked = true;
      write({ t, event });
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(sampler);
      try {
        flush();
        if (out) pruneRuns(stateDir, out.header.system);
      } catch {
        // As above: never fail the command for its history.
      }
    },
  };
}

/** Whether a progress event is worth keeping: the first, a new phase, the last, or once a second. */
function keep(event: BuildEvent, t: number, last: Map<string, { t: number; phase: string }>): boolean {
  let key: string;
  let phase: string;
  let complete = false;
  if (event.type === "pulling") {
    key = `layer:${event.layer}`;
    phase = "pulling";
    complete = event.bytesTotal > 0 && event.bytesDone >= event.bytesTotal;
  } else if (event.type === "source") {
    key = `source:${event.source}`;
    phase = event.phase;
    complete = event.phase === "done";
  } else return true;
  const before = last.get(key);
  if (before && before.phase === phase && !complete && t - before.t < PROGRESS_EVERY_MS) return false;
  last.set(key, { t, phase });
  return true;
}

/** Calls back every CPU_SAMPLE_MS with how many cores were busy (user + system time) meanwhile. */
function startCpuSampler(onSample: (busyCores: number) => void): NodeJS.Timeout {
  let before = cpuTimes();
  const timer = setInterval(() => {
    const after = cpuTimes();
    const total = after.total - before.total;
    const busy = after.busy - before.busy;
    before = after;
    if (total > 0) onSample(Math.round((busy / total) * after.cores * 100) / 100);
  }, CPU_SAMPLE_MS);
  timer.unref();
  return timer;
}

function cpuTimes(): { busy: number; total: number; cores: number } {
  let busy = 0;
  let total = 0;
  const all = cpus();
  for (const { times } of all) {
    busy += times.user + times.nice + times.sys + times.irq;
    total += times.user + times.nice + times.sys + times.irq + times.idle;
  }
  return { busy, total, cores: all.length };
}
