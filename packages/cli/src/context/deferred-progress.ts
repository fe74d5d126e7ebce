// Owns not drawing a UI until there is something to show: events are held until the first one
// that means real work (a build, a pull, a warning, a failure); a fully cached run never loads
// the progress UI at all — which keeps `castle run` of a cached system fast.

import type { BuildEvent } from "@castle/graph";

export interface ProgressSink {
  onEvent(event: BuildEvent): void;
  close(): Promise<void>;
}

const WORK: ReadonlySet<BuildEvent["type"]> = new Set(["building", "pulling", "warning", "failed"]);

export function deferredProgress(create: () => Promise<ProgressSink>): ProgressSink {
  const held: BuildEvent[] = [];
  let sink: Promise<ProgressSink> | undefined;
  return {
    onEvent(event) {
      if (!sink && !WORK.has(event.type)) {
        held.push(event);
        return;
      }
      if (!sink) {
        const replay = held.splice(0);
        sink = create().then((real) => {
          for (const e of replay) real.onEvent(e);
          return real;
        });
      }
      void sink.then((real) => real.onEvent(event));
    },
    async close() {
      if (sink) await (await sink).close();
    },
  };
}
