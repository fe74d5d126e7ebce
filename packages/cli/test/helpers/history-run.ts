// Owns a recorded run for the history tests: a small build on 2 cores with a fetched source, two
// builds side by side, one that waits for a slot, a cached layer and CPU samples, as the
// recorder would have written it.

import type { BuildEvent } from "@castle/graph";
import type { RecordedRun, RunLine } from "../../src/history/run-file";
import { keyRecord, queued } from "./ui-scripted-build";

/** A run on 2 cores: src is fetched (1 s), a builds on it (3 s), b beside it (1 s), c after both waits for a slot then builds (2 s). */
export function recordedRun(file = "/history/demo/0run.jsonl"): RecordedRun {
  const lines: RunLine[] = [];
  const at = (t: number, event: BuildEvent) => lines.push({ t, event });
  at(0, { type: "started", jobs: 2 });
  at(0, queued("src", { kind: "import" }));
  at(0, queued("a", { waitsFor: ["src"], expectedMs: 2500 }));
  at(0, queued("b", { waitsFor: ["src"] }));
  at(0, queued("c", { waitsFor: ["a", "b"] }));
  at(0, queued("old", {}));
  at(10, { type: "cache-hit", layer: "old", key: "k-old", digest: "d" });
  at(10, { type: "done", layer: "old", key: "k-old", record: keyRecord("old", 9000, 10), origin: "local" });
  at(0, { type: "source", source: "src-files", phase: "download", bytesDone: 0, bytesTotal: 5_000_000 });
  at(800, { type: "source", source: "src-files", phase: "download", bytesDone: 5_000_000, bytesTotal: 5_000_000 });
  at(900, { type: "source", source: "src-files", phase: "done", bytesDone: 5_000_000, bytesTotal: 5_000_000 });
  at(1000, { type: "done", layer: "src", key: "k-src", record: keyRecord("src", 1000, 5_000_000), origin: "built" });
  at(1000, { type: "building", layer: "a", key: "k-a", reason: { kind: "changed", changes: ["script changed"] }, logPath: "/logs/a.log", jobs: 2 });
  at(1000, { type: "building", layer: "b", key: "k-b", reason: { kind: "new", changes: [] }, logPath: "/logs/b.log", jobs: 2 });
  at(2000, { type: "done", layer: "b", key: "k-b", record: keyRecord("b", 1000, 10), origin: "built" });
  at(3500, { type: "waiting", layer: "c", for: "slot" });
  at(4000, { type: "done", layer: "a", key: "k-a", record: keyRecord("a", 3000, 10), origin: "built" });
  at(4000, { type: "building", layer: "c", key: "k-c", reason: { kind: "new", changes: [] }, logPath: "/logs/c.log", jobs: 2 });
  at(6000, { type: "done", layer: "c", key: "k-c", record: keyRecord("c", 2000, 10), origin: "built" });
  at(6000, { type: "finished", ok: true, stats: { layers: 5, built: 4, pulled: 0, cached: 1, failed: 0, pushedBytes: 0, pulledBytes: 0, wallMs: 6000, savedMs: 9000 } });
  for (let t = 500; t <= 6000; t += 500) lines.push({ t, cpu: t < 4000 ? 1.9 : 1.1 });
  lines.sort((x, y) => x.t - y.t);
  return {
    file,
    header: { version: 1, id: "0run", system: "demo", definition: "/defs/demo", command: "build", startedAt: Date.UTC(2026, 0, 2, 3, 4, 5), cores: 2, pid: 1 },
    lines,
  };
}

