// Benchmark: where a pull's time goes, phase by phase, each next to the standard tool doing the
// same phase, on the remote benches' 20 layers (bench/remote-pull.ts) served by a static web
// server (its own process): the whole pull (download, sha256 of the blob, zstd, tar parse and
// checks, writes, tree digest, commit) vs `curl | tar -x --zstd`; the download alone, and with
// the blob's sha256, vs curl to files; unpacking the blobs from local files with and without the
// tree digest vs `tar -x --zstd` of the same files; and zstd alone. Besides the wall time it
// prints the CPU time of this process and every process it started (servers, zstd, tar, curl):
// on 2 cores a pull is CPU-bound, so the CPU a phase adds shows in the wall time.
// Run: npx tsx bench/remote-phases.ts   (exports main() for bench/run.ts)

import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import PQueue from "p-queue";
import { openRemote, openStore, pullKeys, pushKeys, unpackTree } from "../packages/cache/src/index";
import { printTable } from "./archive-pack";
import { startWebServer } from "./lib/servers";
import { type BenchRow, median, row } from "./lib/rows";
import { buildLayers } from "./remote-pull";

const RUNS = Number(process.env.CASTLE_BENCH_RUNS ?? 3);
const CONCURRENCY = 4;

function sh(script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("sh", ["-c", script], { stdio: ["ignore", "ignore", "inherit"] });
    child.once("error", reject);
    child.once("close", (code) => (code === 0 ? resolve() : reject(new Error(`failed (${code}): ${script}`))));
  });
}

/** CPU ms used so far by this process and its descendants (live ones, and those they reaped). */
function treeCpuMs(): number {
  const children = new Map<number, number[]>();
  const cpu = new Map<number, number>();
  const tick = 1000 / 100; // USER_HZ
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const parent = Number(fields[1]);
      children.set(parent, [...(children.get(parent) ?? []), Number(name)]);
      // utime, stime, cutime, cstime
      cpu.set(Number(name), (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * tick);
    } catch {
      // Gone meanwhile.
    }
  }
  let sum = 0;
  const todo = [process.pid];
  while (todo.length > 0) {
    const pid = todo.pop() as number;
    sum += cpu.get(pid) ?? 0;
    todo.push(...(children.get(pid) ?? []));
  }
  return sum;
}

interface Phase {
  name: string;
  run: (run: number) => Promise<void>;
}

/** Median wall and CPU ms of each phase, runs interleaved, the first phase rotating. */
async function measure(phases: Phase[]): Promise<Map<string, { wall: number; cpu: number }>> {
  const walls = new Map<string, number[]>(phases.map((p) => [p.name, []]));
  const cpus = new Map<string, number[]>(phases.map((p) => [p.name, []]));
  for (let run = 0; run < RUNS; run++) {
    for (let i = 0; i < phases.length; i++) {
      const phase = phases[(run + i) % phases.length] as Phase;
      const cpu = treeCpuMs();
      const started = performance.now();
      await phase.run(run);
      walls.get(phase.name)?.push(performance.now() - started);
      cpus.get(phase.name)?.push(treeCpuMs() - cpu);
    }
  }
  return new Map(phases.map((p) => [p.name, { wall: median(walls.get(p.name) ?? []), cpu: median(cpus.get(p.name) ?? []) }]));
}

export async function main(): Promise<BenchRow[]> {
  const base = join(existsSync("/dev/shm") ? "/dev/shm" : "/tmp", `castle-bench-phases-${process.pid}`);
  mkdirSync(base, { recursive: true });
  let web: { stop(): void } | undefined;
  try {
    const { records, mb } = await buildLayers(join(base, "ci"));
    const exported = join(base, "exported");
    await pushKeys(openRemote(pathToFileURL(exported).href, { negativeTtlMs: 0 }), openStore(join(base, "ci")), records, { concurrency: CONCURRENCY, strict: true });
    const lookup = openRemote(pathToFileURL(exported).href, { negativeTtlMs: 0 });
    const blobs = await Promise.all(records.map(async (r) => (await lookup.lookup(r.key))!));
    const server = await startWebServer(exported);
    web = server;
    const url = `http://127.0.0.1:${server.port}/`;
    const blobFile = (blob: string) => join(exported, "blobs", "sha256", blob);
    const each = async (fn: (blob: string, i: number) => Promise<void>) => {
      const queue = new PQueue({ concurrency: CONCURRENCY });
      await Promise.all(blobs.map((b, i) => queue.add(() => fn(b.blob, i))));
    };
    const inDir = (label: string, fn: (dir: string) => Promise<void>) => async (run: number) => {
      const dir = join(base, `${label}-${run}`);
      mkdirSync(dir, { recursive: true });
      await fn(dir);
      rmSync(dir, { recursive: true, force: true });
    };
    const download = (hash: boolean) => async () => {
      const remote = openRemote(url, { negativeTtlMs: 0 });
      await each(async (blob) => {
        const got = await remote.backend.getBlob(blob);
        const digest = createHash("sha256");
        for await (const chunk of got?.body ?? []) if (hash) digest.update(chunk as Buffer);
        if (hash && digest.digest("hex") !== blob) throw new Error(`blob ${blob} does not match`);
      });
      await remote.close();
    };
    const unpack = (digest: boolean) => inDir(`unpack-${digest}`, (dir) => each(async (blob, i) => {
      const root = join(dir, String(i));
      mkdirSync(root);
      await unpackTree(createReadStream(blobFile(blob), { highWaterMark: 1 << 20 }), root, { expectBlobDigest: blob, digest });
    }));
    const keys = records.map((r) => ({ key: r.key, name: r.name }));
    const times = await measure([
      { name: "pull", run: inDir("laptop", async (dir) => {
        const remote = openRemote(url, { negativeTtlMs: 0 });
        const report = await pullKeys(remote, openStore(dir), keys, { concurrency: CONCURRENCY, strict: true });
        await remote.close();
        if (report.outcomes.some((o) => o.status !== "pulled")) throw new Error("a layer was not pulled");
      }) },
      { name: "curl-tar", run: inDir("curl-tar", (dir) => each(async (blob, i) => {
        mkdirSync(join(dir, String(i)));
        await sh(`curl -sSf ${url}blobs/sha256/${blob} | tar -x --zstd -C ${join(dir, String(i))}`);
      })) },
      { name: "download", run: download(false) },
      { name: "download-sha", run: download(true) },
      { name: "curl", run: inDir("curl", (dir) => each((blob, i) => sh(`curl -sSf ${url}blobs/sha256/${blob} > ${join(dir, String(i))}`))) },
      { name: "unpack-digest", run: unpack(true) },
      { name: "unpack", run: unpack(false) },
      { name: "tar", run: inDir("tar", (dir) => each(async (blob, i) => {
        mkdirSync(join(dir, String(i)));
        await sh(`tar -x --zstd -C ${join(dir, String(i))} -f ${blobFile(blob)}`);
      })) },
      { name: "zstd", run: () => each((blob) => sh(`zstd -qdc ${blobFile(blob)} > /dev/null`)) },
    ]);
    const t = (name: string) => times.get(name) ?? { wall: NaN, cpu: NaN };
    for (const [name, { wall, cpu }] of times) console.log(`${name.padEnd(14)} wall ${wall.toFixed(0).padStart(6)} ms   cpu (all processes) ${cpu.toFixed(0).padStart(6)} ms`);
    const what = `${records.length} layers (${mb.toFixed(0)} MB tree)`;
    const cpuNote = (a: string, b: string) => `; CPU ${t(a).cpu.toFixed(0)} vs ${t(b).cpu.toFixed(0)} ms`;
    return [
      row(`whole pull of ${what} over HTTP (download, sha256, unpack, tree digest, commit)${cpuNote("pull", "curl-tar")}`, t("pull").wall, t("curl-tar").wall, `curl | tar -x --zstd, ${CONCURRENCY} at once`),
      row(`download only, through Castle's HTTP backend${cpuNote("download", "curl")}`, t("download").wall, t("curl").wall, "curl to files"),
      row(`download + the blobs' sha256${cpuNote("download-sha", "curl")}`, t("download-sha").wall, t("curl").wall, "curl to files"),
      row(`unpack the local blobs: sha256, zstd, tar checks, writes, tree digest${cpuNote("unpack-digest", "tar")}`, t("unpack-digest").wall, t("tar").wall, "tar -x --zstd of the same files"),
      row(`unpack the local blobs without the tree digest${cpuNote("unpack", "tar")}`, t("unpack").wall, t("tar").wall, "tar -x --zstd of the same files"),
      row(`zstd -d of the local blobs alone (what both unpacks include)${cpuNote("zstd", "tar")}`, t("zstd").wall, t("tar").wall, "tar -x --zstd of the same files"),
    ];
  } finally {
    web?.stop();
    rmSync(base, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().then(printTable, (error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
