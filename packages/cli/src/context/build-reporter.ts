// Owns where a build's events go: the progress view (deferred: drawn once there is work, or once
// the run lasts — see deferred-reporter.ts) and the run's record in the history (recorder.ts);
// and, with --timings, the timings page of the run once it is over. A layer the store has no
// build time for gets the one its recorded runs had (a wiped store still has a history).

import { isatty } from "node:tty";
import { writeFileSync } from "node:fs";
import type { BuildEvent } from "@castle/graph";
import { recordedTimes } from "../history/expected-times";
import { createRecorder, type RunIdentity } from "../history/recorder";
import { readRun } from "../history/run-file";
import { timelineOf } from "../history/timeline";
import { timingsHtml } from "../history/timings-html";
import { chooseMode } from "../ui/mode";
import type { Reporter } from "../ui/reporter";
import { deferredReporter } from "./deferred-reporter";
import type { SystemFlags } from "./options";
import { castlePaths } from "./paths";

export interface BuildReporter extends Reporter {
  /** Names the run (for its record) once the definition is loaded. */
  identify(identity: RunIdentity): void;
  /** With --timings, after close(): writes the run's timings page and returns its path. */
  writeTimings(): string | undefined;
}

export function startBuildReporter(flags: SystemFlags, command: string): BuildReporter {
  const startedAt = Math.round(performance.timeOrigin);
  const stateDir = castlePaths().state;
  const recorder = createRecorder({ stateDir, command, startedAt, always: flags.timings });
  const ui = () => import("../ui/index");
  const mode = chooseMode({ plain: flags.plain, isTTY: isatty(2), env: process.env });
  const view = deferredReporter(
    async () => {
      const { createReporter } = await ui();
      // Elapsed times count from the start of the process: that is when the user started waiting.
      return createReporter({ mode, verbose: flags.verbose, stream: process.stderr, since: startedAt });
    },
    // A terminal shows that something is going on once the run lasts; plain lines only for work.
    mode === "tty"
      ? { warmUp: () => void ui().then((loaded) => loaded.warmUpReporter({ plain: flags.plain, isTTY: true, env: process.env })).catch(() => undefined) }
      : { graceMs: Infinity },
  );
  let system: string | undefined;
  let times: Map<string, number> | undefined;
  /** A queued layer's expected time from the history when the store has none (read once, lazily). */
  const withExpectedTime = (event: BuildEvent): BuildEvent => {
    if (event.type !== "queued" || event.expectedMs !== undefined || system === undefined) return event;
    times ??= safely(() => recordedTimes(stateDir, system!)) ?? new Map();
    const expectedMs = times.get(event.layer);
    return expectedMs === undefined ? event : { ...event, expectedMs };
  };
  return {
    onEvent(raw) {
      const event = withExpectedTime(raw);
      view.onEvent(event);
      recorder.onEvent(event);
    },
    identify: (identity) => {
      system = identity.system;
      recorder.identify(identity);
    },
    async close() {
      await Promise.all([view.close(), recorder.close()]);
    },
    writeTimings() {
      if (!flags.timings || !recorder.file) return undefined;
      const page = recorder.file.replace(/\.jsonl$/, ".html");
      writeFileSync(page, timingsHtml(timelineOf(readRun(recorder.file))));
      return page;
    },
  };
}

/** The history is a convenience: reading it must never fail a build. */
function safely<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}
