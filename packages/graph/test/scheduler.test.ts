// Tests for the scheduler on the real sandbox and real stores: cache hits, rebuilding only what
// changed, early cutoff, whiteouts through composition, overrides, concurrency, failures.

import { createHash } from "node:crypto";
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { openStore, removeTree, type LocalStore } from "@castle/cache";
import { run as runSandbox, spawn } from "@castle/sandbox";
import { busyboxMissing, makeBusyboxRootfs } from "../../../test/fixtures/rootfs";
import { buildGraph, buildSystem, layer, source, system, type BuildEvent, type Layer, type System } from "../src/index";
import { startHttpServer } from "./helpers/http-server";
import { jobShare } from "../src/schedule/scheduler";

const skip = busyboxMissing();
if (skip) console.warn(`skipping scheduler tests: ${skip}`);

const sandbox = { spawn };
let rootfs: string;
const temps: string[] = [];
function temp(): string {
  const dir = mkdtempSync(join(tmpdir(), "castle-sched-"));
  temps.push(dir);
  return dir;
}
beforeAll(() => {
  if (!skip) rootfs = makeBusyboxRootfs(temp());
});
afterEach(() => {
  for (const dir of temps.splice(1)) removeTree(dir);
});

async function build(store: LocalStore, sys: System, extra: Partial<Parameters<typeof buildSystem>[1]> = {}) {
  const events: BuildEvent[] = [];
  const outcome = await buildSystem(buildGraph(sys), {
    store,
    sandbox,
    onEvent: (e) => events.push(e),
    sources: { overrides: new Map(), env: {} },
    ...extra,
  });
  const built = events.filter((e) => e.type === "building").map((e) => e.layer).sort();
  const hits = events.filter((e) => e.type === "cache-hit").map((e) => e.layer).sort();
  return { outcome, events, built, hits };
}

/** Runs a command in the composed root of a build outcome. */
async function inRoot(lowers: string[], command: string): Promise<string> {
  const result = await runSandbox({ root: { lowers }, argv: ["/bin/sh", "-c", command] });
  expect(result.stderr).toBe("");
  return result.stdout;
}

function chain(scriptB = "echo b > /b.txt"): { sys: System; base: Layer } {
  const base = layer.import({ name: "base", from: source.local(rootfs) });
  const a = layer({ name: "a", runDeps: [base], script: "echo a > /a.txt" });
  const b = layer({ name: "b", runDeps: [a], script: scriptB });
  const c = layer({ name: "c", runDeps: [b], script: "cat /a.txt /b.txt > /c.txt" });
  return { sys: system({ name: "chain", layers: [c] }), base };
}

describe.skipIf(skip)("buildSystem", () => {
  it("builds a chain once, then finds every layer in the store", async () => {
    const store = openStore(temp());
    const first = await build(store, chain().sys);
    expect(first.built).toEqual(["a", "b", "c"]);
    expect(await inRoot(first.outcome.lowers, "cat /c.txt")).toBe("a\nb\n");
    // GC roots include the stored tree of the local source, not only the layers.
    expect(first.outcome.used.some((r) => r.name.startsWith("source:"))).toBe(true);
    const second = await build(store, chain().sys);
    expect(second.built).toEqual([]);
    expect(second.hits).toEqual(["a", "b", "base", "c"]);
    expect(second.outcome.lowers).toEqual(first.outcome.lowers);
  });

  it("tells a view what it needs: the build slots, each layer's kind, what it waits for, its last build time", async () => {
    const store = openStore(temp());
    const base = layer.import({ name: "base", from: source.local(rootfs) });
    const a = layer({ name: "a", runDeps: [base], script: "echo a > /a.txt" });
    const group = layer.merge({ name: "group", layers: [a] });
    const sys = system({ name: "merged", layers: [group] });
    const first = await build(store, sys, { jobs: 3 });
    expect(first.events[0]).toEqual({ type: "started", jobs: 3 });
    const queued = first.events.filter((e) => e.type === "queued");
    expect(queued).toEqual([
      { type: "queued", layer: "base", kind: "import", waitsFor: [], expectedMs: undefined },
      { type: "queued", layer: "a", kind: "build", waitsFor: ["base"], expectedMs: undefined },
      { type: "queued", layer: "group", kind: "merge", waitsFor: ["base", "a"], expectedMs: undefined },
    ]);
    // A merge layer has no output of its own: it ends with `merged`, never a `done` without a key.
    expect(first.events.filter((e) => "layer" in e && e.layer === "group").map((e) => e.type)).toEqual(["queued", "merged"]);
    const built = first.events.find((e) => e.type === "done" && e.layer === "a");
    const again = await build(store, sys);
    const expected = again.events.find((e) => e.type === "queued" && e.layer === "a");
    expect(expected).toMatchObject({ expectedMs: built?.type === "done" ? built.record.buildMs : -1 });
  });

  it("rebuilds a changed layer and its dependents only, saying why", async () => {
    const store = openStore(temp());
    await build(store, chain().sys);
    const changed = await build(store, chain("echo B > /b.txt").sys);
    expect(changed.built).toEqual(["b", "c"]);
    const reason = changed.events.find((e) => e.type === "building" && e.layer === "b");
    expect(reason).toMatchObject({ reason: { kind: "changed", changes: ["script changed"] } });
    const dependent = changed.events.find((e) => e.type === "building" && e.layer === "c");
    expect(dependent).toMatchObject({ reason: { changes: [expect.stringMatching(/^dependency b: output /)] } });
  });

  it("does not rebuild dependents when a rebuilt layer's output is identical (early cutoff)", async () => {
    const store = openStore(temp());
    const src = temp();
    writeFileSync(join(src, "data.txt"), "payload\n");
    writeFileSync(join(src, "notes.md"), "a comment\n");
    const make = () => {
      const base = layer.import({ name: "base", from: source.local(rootfs) });
      const gen = layer({ name: "gen", runDeps: [base], mounts: { "/src": source.local(src, { name: "gen-src" }) }, script: "cp /src/data.txt /data.txt" });
      const use = layer({ name: "use", runDeps: [gen], script: "wc -c < /data.txt > /size" });
      return system({ name: "cutoff", layers: [use] });
    };
    await build(store, make());
    writeFileSync(join(src, "notes.md"), "a different comment\n");
    const again = await build(store, make());
    expect(again.built).toEqual(["gen"]);
    expect(again.hits).toContain("use");
  });

  it("keeps deletions as whiteouts so composed roots do not show deleted files", async () => {
    const store = openStore(temp());
    const base = layer.import({ name: "base", from: source.local(rootfs) });
    const add = layer({ name: "add", runDeps: [base], script: "mkdir -p /opt/d && echo x > /opt/d/f && echo y > /opt/keep" });
    const del = layer({ name: "del", runDeps: [add], script: "rm /opt/keep && rm -r /opt/d && mkdir /opt/d && echo z > /opt/d/new" });
    const { outcome } = await build(store, system({ name: "wh", layers: [del] }));
    expect(await inRoot(outcome.lowers, "ls -A /opt; ls -A /opt/d")).toBe("d\nnew\n");
  });

  it("applies a source override to that source's dependents only", async () => {
    const store = openStore(temp());
    const src = temp();
    const patched = temp();
    writeFileSync(join(src, "v"), "1\n");
    writeFileSync(join(patched, "v"), "2\n");
    const make = () => {
      const base = layer.import({ name: "base", from: source.local(rootfs) });
      const lib = layer({ name: "lib", runDeps: [base], mounts: { "/src": source.local(src, { name: "lib-src" }) }, script: "cp /src/v /v" });
      const other = layer({ name: "other", runDeps: [base], script: "echo other > /other" });
      const app = layer({ name: "app", runDeps: [lib, other], script: "cat /v /other > /app" });
      return system({ name: "ovr", layers: [app] });
    };
    await build(store, make());
    const overridden = await build(store, make(), { sources: { overrides: new Map([["lib_src", patched]]), env: {} } });
    expect(overridden.built).toEqual(["app", "lib"]);
    expect(await inRoot(overridden.outcome.lowers, "cat /app")).toBe("2\nother\n");
    const back = await build(store, make());
    expect(back.built).toEqual([]);
  });

  it("rebuilds a layer it is asked to rebuild even though the store has it", async () => {
    const store = openStore(temp());
    await build(store, chain().sys);
    const again = await build(store, chain().sys, { force: new Set(["b"]) });
    expect(again.built).toEqual(["b"]);
    expect(again.events.find((e) => e.type === "building" && e.layer === "b")).toMatchObject({ reason: { kind: "forced" } });
    expect(again.events.find((e) => e.type === "done" && e.layer === "b")).toMatchObject({ origin: "built" });
  });

  it("gives a build every core when it runs alone, even with others queued behind it (--jobs 1)", async () => {
    const store = openStore(temp());
    const base = layer.import({ name: "base", from: source.local(rootfs) });
    const wide = ["q1", "q2", "q3"].map((name) => layer({ name, runDeps: [base], script: `echo "$CASTLE_JOBS $MAKEFLAGS" > /${name}` }));
    const { events } = await build(store, system({ name: "one-at-a-time", layers: wide }), { jobs: 1 });
    const cores = availableParallelism();
    const given = events.filter((e) => e.type === "building").map((e) => (e as { jobs: number }).jobs);
    expect(given).toEqual([cores, cores, cores]);
    // One slot for three ready layers: the two that wait say so before they build.
    const waiting = events.filter((e) => e.type === "waiting").map((e) => (e as { layer: string }).layer);
    expect(waiting).toHaveLength(2);
    for (const layer of waiting) {
      const order = events.filter((e) => "layer" in e && e.layer === layer).map((e) => e.type);
      expect(order.indexOf("waiting")).toBeLessThan(order.indexOf("building"));
    }
  });

  it("shares cores at twice the exact share, capped at every core (no idle cores when one build is left)", () => {
    expect([1, 2, 3, 4].map((sharing) => jobShare(2, sharing))).toEqual([2, 2, 1, 1]);
    expect([1, 2, 4, 8, 16, 64].map((sharing) => jobShare(16, sharing))).toEqual([16, 16, 8, 4, 2, 1]);
    expect(jobShare(1, 0)).toBe(1);
  });

  it("runs independent layers in parallel", async () => {
    const store = openStore(temp());
    const base = layer.import({ name: "base", from: source.local(rootfs) });
    const wide = ["w1", "w2", "w3", "w4"].map((name) => layer({ name, runDeps: [base], script: `sleep 1; echo ${name} > /${name}` }));
    const started = Date.now();
    const { built } = await build(store, system({ name: "wide", layers: wide }), { jobs: 4 });
    expect(built).toEqual(["w1", "w2", "w3", "w4"]);
    expect(Date.now() - started).toBeLessThan(3500);
  });

  it("builds one key once when two builds run at the same time", async () => {
    const store = openStore(temp());
    const [first, second] = await Promise.all([build(store, chain().sys), build(openStore(store.root), chain().sys)]);
    const builtTotal = first.built.length + second.built.length;
    expect(builtTotal).toBe(3);
    expect(first.outcome.lowers).toEqual(second.outcome.lowers);
  });

  it("reports a failing layer with its log tail, stops its dependents and commits nothing for it", async () => {
    const store = openStore(temp());
    const base = layer.import({ name: "base", from: source.local(rootfs) });
    const bad = layer({ name: "bad", runDeps: [base], script: "echo about to fail; echo reason >&2; exit 3" });
    const after = layer({ name: "after", runDeps: [bad], script: "true" });
    const events: BuildEvent[] = [];
    await expect(
      buildSystem(buildGraph(system({ name: "fail", layers: [after] })), {
        store, sandbox, onEvent: (e) => events.push(e), sources: { overrides: new Map(), env: {} },
      }),
    ).rejects.toMatchObject({ code: "CASTLE_BUILD_FAILED", layer: "bad", data: { exitCode: 3 } });
    const failed = events.find((e) => e.type === "failed");
    expect(failed).toMatchObject({ layer: "bad", logTail: expect.arrayContaining(["about to fail", "reason"]) });
    expect(events.find((e) => e.type === "skipped" && e.layer === "after")).toBeTruthy();
    expect(events.at(-1)).toMatchObject({ type: "finished", ok: false });
    expect(readdirSync(join(store.root, "tmp"))).toEqual([]);
    expect(store.records().map((r) => r.name).filter((n) => !n.startsWith("source:")).sort()).toEqual(["base"]);
  });

  it("downloads a few http sources at a time, not all of a layer's mounts at once", async () => {
    // A definition may mount a hundred pinned files (e.g. .debs); opening a hundred connections
    // (and DNS look-ups) at once makes real mirrors and resolvers time out.
    let inFlight = 0;
    let most = 0;
    const server = await startHttpServer((req, res) => {
      inFlight++;
      most = Math.max(most, inFlight);
      setTimeout(() => {
        inFlight--;
        res.end(`file ${req.url}\n`);
      }, 100);
    });
    try {
      const files = Array.from({ length: 24 }, (_, i) => `/f${i}.txt`);
      const sha = (path: string) => createHash("sha256").update(`file ${path}\n`).digest("hex");
      const base = layer.import({ name: "base", from: source.local(rootfs) });
      const many = layer({
        name: "many", runDeps: [base], script: "cat /in/*/* | wc -l > /count",
        mounts: Object.fromEntries(files.map((f, i) => [`/in/${i}`, source.http({ name: `f${i}`, url: `${server.url}${f}`, sha256: sha(f) })])),
      });
      const { outcome, events } = await build(openStore(temp()), system({ name: "many", layers: [many] }));
      expect(await inRoot(outcome.lowers, "cat /count")).toBe("24\n");
      // Each download is reported as it goes, and ends with "done".
      const f3 = events.flatMap((e) => (e.type === "source" && e.source === "f3" ? [e.phase] : []));
      expect(f3[0]).toBe("download");
      expect(f3.at(-1)).toBe("done");
      expect(f3).toContain("store");
      expect(most).toBeGreaterThan(1);
      expect(most).toBeLessThanOrEqual(8);
    } finally {
      await server.close();
    }
  });

  it("does not let a build write into its mounts' sources or its dependencies", async () => {
    const store = openStore(temp());
    const src = temp();
    mkdirSync(join(src, "sub"));
    writeFileSync(join(src, "sub/f"), "orig\n");
    const base = layer.import({ name: "base", from: source.local(rootfs) });
    const w = layer({
      name: "w", runDeps: [base], mounts: { "/src": source.local(src, { name: "w-src" }) },
      // Every command must succeed (sh -e): the writes and the deletion really happen, in the upper.
      script: "echo changed > /src/sub/f && echo new > /src/new && rm /bin/cat && echo out > /out",
    });
    const { outcome } = await build(store, system({ name: "ro", layers: [w] }));
    // In the system, w's deletion shows (a whiteout in w's output) and its mount writes do not.
    expect(await inRoot(outcome.lowers, "test -e /bin/cat && echo still; test -e /src/new && echo leaked; read out < /out; echo $out")).toBe("out\n");
    // Nothing it mounted or built on changed: the source dir, the base's stored tree, the rootfs.
    expect(readdirSync(src).sort()).toEqual(["sub"]);
    expect(readFileSync(join(src, "sub/f"), "utf8")).toBe("orig\n");
    const baseTree = store.treePath(outcome.layers.find((l) => l.name === "base")!.record.digest);
    expect(lstatSync(join(baseTree, "bin/cat")).isSymbolicLink()).toBe(true);
    expect(lstatSync(join(rootfs, "bin/cat")).isSymbolicLink()).toBe(true);
  });
});
