// Benchmark: pulling a cached multi-layer system (20 layers, the files of the archive bench's
// tree spread over them, ~400 MB unpacked) from s3rver on loopback with Castle's pullKeys —
// download, sha256 check, unpack, tree digest check, commit — against two peers at the same
// concurrency, on the same blobs: raw parallel GetObject with the SDK, each streamed to a file
// (moves only the compressed bytes), and GetObject piped into `tar -x --zstd` (the same
// download + decompress + write work done with standard tools, without Castle's checks and
// commit). s3rver runs in its own process (as a real server would); its data and the stores
// live on /dev/shm when it exists, so disk writeback does not decide the result. Runs are
// interleaved, and which side goes first rotates.
// Run: npx tsx bench/remote-pull.ts   (exports main() for bench/run.ts)

import { spawn } from "node:child_process";
import { copyFileSync, createWriteStream, existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Readable } from "node:stream";
import { fileURLToPath, pathToFileURL } from "node:url";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import PQueue from "p-queue";
import { type KeyRecord, openRemote, openStore, pullKeys, pushKeys, walkTree } from "../packages/cache/src/index";
import { benchTree, printTable } from "./archive-pack";
import { startChild, startLinkProxy } from "./lib/servers";
import { type BenchRow, median, row } from "./lib/rows";

const RUNS = Number(process.env.CASTLE_BENCH_RUNS ?? 5);
const LAYERS = 20;
const CONCURRENCY = 4;
/** Bandwidth of the simulated link, MB/s. */
const LINK_MBPS = Number(process.env.CASTLE_BENCH_LINK_MBPS ?? 100);
const CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };
const repo = join(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * Starts s3rver in a child process, with a proxy in front that limits server → client traffic
 * to LINK_MBPS in total (a stand-in for a real network link); resolves with both endpoints.
 */
async function startServer(dir: string): Promise<{ endpoint: string; linkEndpoint: string; stop(): void }> {
  const s3 = await startChild(`const S3rver = require("s3rver");
new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory: ${JSON.stringify(dir)}, configureBuckets: [{ name: "castle", configs: [] }] })
  .run().then((a) => console.log(a.port));`, repo);
  const link = await startLinkProxy(s3.port, LINK_MBPS);
  return {
    endpoint: `http://127.0.0.1:${s3.port}`,
    linkEndpoint: `http://127.0.0.1:${link.port}`,
    stop: () => {
      link.stop();
      s3.stop();
    },
  };
}

/** Spreads the bench tree's files over LAYERS layers and commits them. */
export async function buildLayers(storeDir: string): Promise<{ records: KeyRecord[]; mb: number }> {
  const store = openStore(storeDir);
  const files = walkTree(benchTree()).filter((e) => e.kind === "file");
  const records: KeyRecord[] = [];
  let bytes = 0;
  for (let layer = 0; layer < LAYERS; layer++) {
    const staging = await store.stage(`layer-${layer}`);
    for (let i = layer; i < files.length; i += LAYERS) {
      const file = files[i];
      if (file?.kind !== "file") continue;
      const target = join(staging.tree, file.path);
      mkdirSync(dirname(target), { recursive: true });
      copyFileSync(file.absPath, target);
      bytes += file.size;
    }
    const key = layer.toString(16).padStart(64, "0");
    records.push(await store.commit(staging, key, { name: `layer-${layer}`, buildMs: 0, origin: "built" }));
  }
  return { records, mb: bytes / 1e6 };
}

interface Times {
  castleMs: number;
  rawMs: number;
  tarMs: number;
}

/** Median times of Castle's pullKeys and the two peers through endpoint, runs interleaved. */
async function measure(base: string, endpoint: string, records: KeyRecord[], blobs: string[]): Promise<Times> {
  const remote = openRemote(`s3://castle/bench?endpoint=${endpoint}`, { credentials: CREDENTIALS, negativeTtlMs: 0 });
  const client = new S3Client({
    region: "us-east-1", endpoint, forcePathStyle: true, credentials: CREDENTIALS,
    requestChecksumCalculation: "WHEN_REQUIRED", responseChecksumValidation: "WHEN_REQUIRED",
  });
  const times = { castle: [] as number[], raw: [] as number[], tar: [] as number[] };
  const getAll = async (each: (body: Readable, blob: string) => Promise<void>) => {
    const queue = new PQueue({ concurrency: CONCURRENCY });
    await Promise.all(blobs.map((blob) => queue.add(async () => {
      const out = await client.send(new GetObjectCommand({ Bucket: "castle", Key: `bench/blobs/sha256/${blob}` }));
      await each(out.Body as Readable, blob);
    })));
  };
  const sides: Array<[keyof typeof times, (run: number) => Promise<void>]> = [
    ["castle", async (run) => {
      const storeDir = join(base, `laptop-${run}`);
      const t = performance.now();
      const report = await pullKeys(remote, openStore(storeDir), records.map((r) => r.key), { concurrency: CONCURRENCY, strict: true });
      times.castle.push(performance.now() - t);
      if (report.outcomes.some((o) => o.status !== "pulled")) throw new Error("a layer was not pulled");
      rmSync(storeDir, { recursive: true, force: true });
    }],
    ["raw", async (run) => {
      const rawDir = join(base, `raw-${run}`);
      mkdirSync(rawDir);
      const t = performance.now();
      await getAll((body, blob) => pipeline(body, createWriteStream(join(rawDir, blob))));
      times.raw.push(performance.now() - t);
      rmSync(rawDir, { recursive: true, force: true });
    }],
    ["tar", async (run) => {
      const tarDir = join(base, `tar-${run}`);
      mkdirSync(tarDir);
      const t = performance.now();
      await getAll(async (body, blob) => {
        const target = join(tarDir, blob);
        mkdirSync(target);
        const tar = spawn("tar", ["-x", "--zstd", "-C", target], { stdio: ["pipe", "ignore", "inherit"] });
        const exited = new Promise<void>((resolve, reject) => {
          tar.once("error", reject);
          tar.once("close", (code) => (code === 0 ? resolve() : reject(new Error(`tar -x exited with ${code}`))));
        });
        await pipeline(body, tar.stdin as NodeJS.WritableStream);
        await exited;
      });
      times.tar.push(performance.now() - t);
      rmSync(tarDir, { recursive: true, force: true });
    }],
  ];
  try {
    for (let run = 0; run < RUNS; run++) {
      for (let i = 0; i < sides.length; i++) {
        const [, side] = sides[(run + i) % sides.length] as (typeof sides)[number];
        await side(run);
      }
    }
  } finally {
    client.destroy();
    await remote.close();
  }
  return { castleMs: median(times.castle), rawMs: median(times.raw), tarMs: median(times.tar) };
}

export async function main(): Promise<BenchRow[]> {
  const base = join(existsSync("/dev/shm") ? "/dev/shm" : "/tmp", `castle-bench-pull-${process.pid}`);
  mkdirSync(base, { recursive: true });
  const server = await startServer(join(base, "s3"));
  try {
    const { records, mb } = await buildLayers(join(base, "ci"));
    const url = `s3://castle/bench?endpoint=${server.endpoint}`;
    const remote = openRemote(url, { credentials: CREDENTIALS, negativeTtlMs: 0 });
    const pushed = await pushKeys(remote, openStore(join(base, "ci")), records, { concurrency: CONCURRENCY, strict: true });
    const blobs = await Promise.all(records.map(async (r) => (await remote.lookup(r.key))?.blob as string));
    const blobMb = pushed.bytes / 1e6;
    const rows: BenchRow[] = [];
    for (const [label, endpoint] of [["loopback", server.endpoint], [`${LINK_MBPS} MB/s link`, server.linkEndpoint]] as const) {
      const { castleMs, rawMs, tarMs } = await measure(base, endpoint, records, blobs);
      const rate = (ms: number) => `${(blobMb / (ms / 1000)).toFixed(0)} MB/s of blobs`;
      console.log(`pull over ${label}: castle ${rate(castleMs)} (${(mb / (castleMs / 1000)).toFixed(0)} MB/s unpacked), raw GetObject ${rate(rawMs)}, GetObject | tar -x --zstd ${rate(tarMs)}`);
      const name = `pull ${LAYERS} layers over ${label} (${blobMb.toFixed(0)} MB blobs → ${mb.toFixed(0)} MB tree), concurrency ${CONCURRENCY}`;
      rows.push(
        row(name, castleMs, rawMs, "SDK GetObject to files"),
        row(name, castleMs, tarMs, "SDK GetObject | tar -x --zstd"),
      );
    }
    await remote.close();
    return rows;
  } finally {
    server.stop();
    rmSync(base, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().then(printTable, (error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
