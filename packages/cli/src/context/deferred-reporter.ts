// Owns not drawing a UI until there is something to show: events are held until the first one
// that means real work (fetching a source, waiting for a slot, a build, a pull, a warning, a
// failure), or until the run has lasted `graceMs` — whichever comes first, so a slow start
// (a definition being fetched or compiled, layers being looked up) shows from the first second,
// while a fully cached run, which ends sooner, never loads the progress UI at all (what the UI
// needs starts loading a little earlier than that, so that its first frame is not late).

import type { BuildEvent } from "@castle/graph";
import type { Reporter } from "../ui/reporter";

const WORK: ReadonlySet<BuildEvent["type"]> = new Set(["waiting", "building", "pulling", "warning", "failed"]);

/**
 * Whether an event means real work: a build, a pull, a download or clone over the network, a
 * layer waiting for a slot, a warning or a failure. Copying a local directory into the store is
 * not (it is quick, and a run that only does that is as good as cached to the user).
 */
export function meansWork(event: BuildEvent): boolean {
  if (event.type === "source") return event.phase === "download" || event.phase === "clone";
  return WORK.has(event.type);
}

/** How long a run may go without showing anything. */
export const DEFAULT_GRACE_MS = 200;

/** When to start loading what the real reporter needs (a cached run is over by then). */
export const DEFAULT_WARM_UP_MS = 100;

export interface DeferredReporterOptions {
  /** Create the real reporter after this long even without work (ms; Infinity: only for work). Default DEFAULT_GRACE_MS. */
  graceMs?: number;
  /** Called after warmUpMs unless the reporter was closed: start loading what it needs. */
  warmUp?: () => void;
  warmUpMs?: number;
}

/** A Reporter that creates the real one (with `create`) on the first event that means work. */
export function deferredReporter(
  create: () => Promise<Reporter>,
  { graceMs = DEFAULT_GRACE_MS, warmUp, warmUpMs = DEFAULT_WARM_UP_MS }: DeferredReporterOptions = {},
): Reporter {
  const held: BuildEvent[] = [];
  let real: Promise<Reporter> | undefined;
  let closed = false;
  const start = (): Promise<Reporter> => {
    clearTimeout(timer);
    const replay = held.splice(0);
    return (real ??= create().then((reporter) => {
      for (const e of replay) reporter.onEvent(e);
      return reporter;
    }));
  };
  const timer = Number.isFinite(graceMs)
    ? setTimeout(() => {
        if (!closed && !real) void start();
      }, graceMs)
    : undefined;
  timer?.unref();
  const warming = warmUp
    ? setTimeout(() => {
        if (!closed) warmUp();
      }, warmUpMs)
    : undefined;
  warming?.unref();
  return {
    onEvent(event) {
      if (!real && !meansWork(event)) {
        held.push(event);
        return;
      }
      void start().then((reporter) => reporter.onEvent(event));
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      clearTimeout(warming);
      if (real) await (await real).close();
    },
  };
}
