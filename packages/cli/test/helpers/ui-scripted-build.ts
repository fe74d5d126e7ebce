// Owns a scripted build for the progress UI's tests and demo: a timed sequence of BuildEvents
// (cache hits, a pull with progress, parallel builds with log lines, a warning, a push, and
// optionally a failure) as the scheduler would emit them.

import type { BuildEvent, BuildStats } from "@castle/graph";

type KeyRecord = Extract<BuildEvent, { type: "done" }>["record"];

export interface TimedEvent {
  /** Ms after the start of the build. */
  at: number;
  event: BuildEvent;
}

export function keyRecord(name: string, buildMs: number, bytes: number, origin: "built" | "pulled" = "built"): KeyRecord {
  return { key: `key-${name}`, digest: `digest-${name}`, name, createdAt: "2025-01-01T00:00:00.000Z", buildMs, bytes, entries: 10, origin };
}

/** A `queued` event: a build layer waiting for nothing, with no recorded build unless given. */
export function queued(layer: string, options: { kind?: "build" | "import" | "merge"; waitsFor?: string[]; expectedMs?: number } = {}): BuildEvent {
  return { type: "queued", layer, kind: options.kind ?? "build", waitsFor: options.waitsFor ?? [], expectedMs: options.expectedMs };
}

/** Eight layers: 3 cached, 1 pulled, 2 built (or lua fails and app is skipped), 1 merge, 1 not needed. */
export function scriptedBuild({ fail = false, logLinesPerBuild = 3 } = {}): TimedEvent[] {
  const steps: TimedEvent[] = [];
  const at = (ms: number, event: BuildEvent): void => void steps.push({ at: ms, event });
  at(0, { type: "started", jobs: 2 });
  const expected: Record<string, number> = { lua: 6000, app: 3000 };
  for (const layer of ["busybox", "musl", "zlib", "gcc", "lua", "app", "base", "docs"]) {
    at(0, queued(layer, { kind: layer === "base" ? "merge" : "build", expectedMs: expected[layer] }));
  }
  for (const layer of ["busybox", "musl", "gcc"]) {
    at(10, { type: "cache-hit", layer, key: `key-${layer}`, digest: `digest-${layer}` });
    at(10, { type: "done", layer, key: `key-${layer}`, record: keyRecord(layer, 20_000, 1_000_000), origin: "local" });
  }
  at(100, { type: "pulling", layer: "zlib", key: "key-zlib", bytesDone: 0, bytesTotal: 5_000_000 });
  at(600, { type: "pulling", layer: "zlib", key: "key-zlib", bytesDone: 1_000_000, bytesTotal: 5_000_000 });
  at(2100, { type: "pulling", layer: "zlib", key: "key-zlib", bytesDone: 3_200_000, bytesTotal: 5_000_000 });
  at(2600, { type: "pulling", layer: "zlib", key: "key-zlib", bytesDone: 5_000_000, bytesTotal: 5_000_000 });
  at(2600, { type: "done", layer: "zlib", key: "key-zlib", record: keyRecord("zlib", 0, 9_000_000, "pulled"), origin: "pulled" });
  at(2700, {
    type: "building", layer: "lua", key: "key-lua", logPath: "/cache/logs/key-lua.log", jobs: 2,
    reason: { kind: "changed", changes: ["dependency musl: output 1a2b… → 9f8e…"] },
  });
  at(2700, { type: "building", layer: "app", key: "key-app", logPath: "/cache/logs/key-app.log", jobs: 2, reason: { kind: "new", changes: [] } });
  for (let i = 1; i <= logLinesPerBuild; i++) {
    at(2700 + i * 100, { type: "log", layer: "lua", line: `\x1b[32mcc\x1b[0m -c lua${i}.c` });
    at(2700 + i * 100, { type: "log", layer: "app", line: `make app step ${i}` });
  }
  at(3200, { type: "warning", layer: "zlib", message: "export of zlib to s3://bucket/c failed: timeout", code: "CASTLE_REMOTE_TIMEOUT" });
  if (fail) {
    const logTail = Array.from({ length: 30 }, (_, i) => `lua.c:${i + 3}: error line ${i + 3}`);
    at(4000, {
      type: "failed", layer: "lua", message: "build of lua failed: /bin/sh exited with status 2", code: "CASTLE_BUILD_FAILED",
      logPath: "/cache/logs/key-lua.log", logTail,
    });
    at(4100, { type: "skipped", layer: "app", because: "lua failed" });
    at(4100, { type: "skipped", layer: "base", because: "the build stopped" });
    at(4100, { type: "skipped", layer: "docs", because: "the build stopped" });
  } else {
    at(4000, { type: "done", layer: "lua", key: "key-lua", record: keyRecord("lua", 21_400, 2_000_000), origin: "built" });
    at(4000, { type: "pushed", layer: "lua", key: "key-lua", uploadedBytes: 1_200_000 });
    at(4200, { type: "done", layer: "app", key: "key-app", record: keyRecord("app", 0, 1000), origin: "built" });
    at(4300, { type: "merged", layer: "base" });
    at(4300, { type: "skipped", layer: "docs", because: "not needed: everything that uses it is cached" });
  }
  const stats: BuildStats = {
    layers: 8, built: fail ? 0 : 2, pulled: 1, cached: 3, failed: fail ? 1 : 0,
    pushedBytes: fail ? 0 : 1_200_000, pulledBytes: 5_000_000, wallMs: 4300, savedMs: 60_000,
  };
  at(4300, { type: "finished", ok: !fail, stats });
  return steps;
}
