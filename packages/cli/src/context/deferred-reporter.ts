// Owns not drawing a UI until there is something to show: events are held until the first one
// that means real work (a build, a pull, a warning, a failure); a fully cached run never loads
// the progress UI at all — which keeps `castle run` of a cached system fast.

import type { BuildEvent } from "@castle/graph";
import type { Reporter } from "../ui/reporter";

const WORK: ReadonlySet<BuildEvent["type"]> = new Set(["building", "pulling", "warning", "failed"]);

/** A Reporter that creates the real one (with `create`) on the first event that means work. */
export function deferredReporter(create: () => Promise<Reporter>): Reporter {
  const held: BuildEvent[] = [];
  let real: Promise<Reporter> | undefined;
  return {
    onEvent(event) {
      if (!real && !WORK.has(event.type)) {
        held.push(event);
        return;
      }
      if (!real) {
        const replay = held.splice(0);
        real = create().then((reporter) => {
          for (const e of replay) reporter.onEvent(e);
          return reporter;
        });
      }
      void real.then((reporter) => reporter.onEvent(event));
    },
    async close() {
      if (real) await (await real).close();
    },
  };
}
