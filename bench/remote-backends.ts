// Benchmark: pulling a cached multi-layer system from the remotes other than S3, against the
// standard tools on the same blobs, at the same concurrency where the tool allows it:
//  - an OCI registry (Debian's docker-registry, its own process) vs `skopeo copy` of the same
//    blobs (one OCI manifest naming all of them) to a directory — download only — and skopeo
//    copy followed by `tar -x --zstd` of each blob (download, then unpack); and, as the same work
//    as skopeo's copy, Castle's OCI backend downloading each blob to a file and checking its
//    sha256 (no unpack, no tree digest, no commit), to show what the unpack costs;
//  - a static web server (its own process) serving an exported directory vs `curl | tar -x
//    --zstd` of the same blobs, 4 at once;
//  - over loopback and over a link limited to CASTLE_BENCH_LINK_MBPS (default 100 MB/s);
//  - what signatures cost: a pull verifying every manifest against a trusted key vs the same pull
//    not checking them, and a push signing every manifest vs one that does not.
// The layers are synthetic — the archive bench's tree (/usr/include + /usr/bin, ~400 MB) spread
// over 20 layers (bench/remote-pull.ts) — of the same order as the distro's store, which takes
// minutes to build on 2 cores. Castle pulls with pullKeys (download, sha256, unpack, tree digest,
// commit). Runs are interleaved and which side goes first rotates.
// Run: npx tsx bench/remote-backends.ts   (exports main() for bench/run.ts)

import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { pathToFileURL } from "node:url";
import PQueue from "p-queue";
import {
  generateSigningKey, openRemote, openStore, parsePublicKey, parseSigningKey, pullKeys, pushKeys, signManifest, TrustPolicy, type KeyRecord,
} from "../packages/cache/src/index";
import { startRegistry } from "../packages/cache/test/helpers/registry";
import { printTable } from "./archive-pack";
import { startLinkProxy, startWebServer } from "./lib/servers";
import { type BenchRow, median, row } from "./lib/rows";
import { buildLayers } from "./remote-pull";

const RUNS = Number(process.env.CASTLE_BENCH_RUNS ?? 3);
const CONCURRENCY = 4;
const LINK_MBPS = Number(process.env.CASTLE_BENCH_LINK_MBPS ?? 100);
const REPO = "bench/cache";

function sh(script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("sh", ["-c", script], { stdio: ["ignore", "ignore", "inherit"] });
    child.once("error", reject);
    child.once("close", (code) => (code === 0 ? resolve() : reject(new Error(`failed (${code}): ${script}`))));
  });
}

/** Median ms of each side, runs interleaved, the first side rotating. */
async function measure(sides: Array<[string, (run: number) => Promise<void>]>): Promise<Record<string, number>> {
  const times: Record<string, number[]> = Object.fromEntries(sides.map(([name]) => [name, []]));
  for (let run = 0; run < RUNS; run++) {
    for (let i = 0; i < sides.length; i++) {
      const [name, side] = sides[(run + i) % sides.length]!;
      const started = performance.now();
      await side(run);
      times[name]!.push(performance.now() - started);
    }
  }
  return Object.fromEntries(Object.entries(times).map(([name, t]) => [name, median(t)]));
}

/** An OCI manifest naming every blob, tagged bench-all, so skopeo can copy them all at once. */
async function tagAllBlobs(host: string, blobs: Array<{ blob: string; size: number }>): Promise<void> {
  const manifest = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.empty.v1+json", digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", size: 2 },
    layers: blobs.map((b) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+zstd", digest: `sha256:${b.blob}`, size: b.size })),
  };
  const response = await fetch(`http://${host}/v2/${REPO}/manifests/bench-all`, {
    method: "PUT", headers: { "content-type": manifest.mediaType }, body: JSON.stringify(manifest),
  });
  if (response.status !== 201) throw new Error(`tagging the blobs failed: ${response.status} ${await response.text()}`);
}

export async function main(): Promise<BenchRow[]> {
  for (const tool of ["docker-registry", "skopeo", "curl", "zstd"]) {
    if (spawnSync(tool, ["--version"]).error) throw new Error(`${tool} is not installed`);
  }
  const base = join(existsSync("/dev/shm") ? "/dev/shm" : "/tmp", `castle-bench-backends-${process.pid}`);
  mkdirSync(base, { recursive: true });
  const registry = await startRegistry();
  const servers: Array<{ stop(): void }> = [];
  try {
    const ciDir = join(base, "ci");
    const { records, mb } = await buildLayers(ciDir);
    const ci = openStore(ciDir);
    const key = generateSigningKey("bench");
    const signingKey = parseSigningKey(key.secret);
    const exported = join(base, "exported");
    const push = async (url: string, signed = true) =>
      pushKeys(openRemote(url, { negativeTtlMs: 0, ...(signed ? { signingKey } : {}) }), ci, records, { concurrency: CONCURRENCY, strict: true });
    const pushed = await push(`oci://${registry.host}/${REPO}`);
    await push(pathToFileURL(exported).href);
    const lookup = openRemote(pathToFileURL(exported).href, { negativeTtlMs: 0 });
    const blobs = await Promise.all(records.map(async (r) => (await lookup.lookup(r.key))!));
    await tagAllBlobs(registry.host, blobs);
    const web = await startWebServer(exported);
    const registryLink = await startLinkProxy(registry.port, LINK_MBPS);
    const webLink = await startLinkProxy(web.port, LINK_MBPS);
    servers.push(web, registryLink, webLink);
    const blobMb = pushed.bytes / 1e6;
    const keys = records.map((r: KeyRecord) => ({ key: r.key, name: r.name }));
    const castlePull = (url: string, verify: boolean) => async (run: number) => {
      const dir = join(base, `laptop-${run}`);
      const remote = openRemote(url, { negativeTtlMs: 0, ...(verify ? { trustedKeys: [key.publicLine] } : {}) });
      const report = await pullKeys(remote, openStore(dir), keys, { concurrency: CONCURRENCY, strict: true });
      await remote.close();
      if (report.outcomes.some((o) => o.status !== "pulled")) throw new Error("a layer was not pulled");
      rmSync(dir, { recursive: true, force: true });
    };
    // What skopeo's copy does, through Castle's backend: each blob to a file, its sha256 checked.
    const castleDownload = (url: string) => async (run: number) => {
      const dir = join(base, `download-${run}`);
      mkdirSync(dir, { recursive: true });
      const remote = openRemote(url, { negativeTtlMs: 0 });
      const queue = new PQueue({ concurrency: CONCURRENCY });
      await Promise.all(blobs.map((b) => queue.add(async () => {
        const got = await remote.backend.getBlob(b.blob);
        if (!got) throw new Error(`blob ${b.blob} is missing`);
        const hash = createHash("sha256");
        const hashing = new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            hash.update(chunk);
            callback(null, chunk);
          },
        });
        await pipeline(got.body, hashing, createWriteStream(join(dir, b.blob)));
        if (hash.digest("hex") !== b.blob) throw new Error(`blob ${b.blob} does not match its digest`);
      })));
      await remote.close();
      rmSync(dir, { recursive: true, force: true });
    };
    const untar = async (dir: string, source: (blob: string) => string) => {
      const queue = new PQueue({ concurrency: CONCURRENCY });
      await Promise.all(blobs.map((b) => queue.add(async () => {
        mkdirSync(join(dir, "t", b.blob), { recursive: true });
        await sh(`${source(b.blob)} | tar -x --zstd -C ${join(dir, "t", b.blob)}`);
      })));
    };
    const rows: BenchRow[] = [];
    const what = `${records.length} layers (${blobMb.toFixed(0)} MB blobs → ${mb.toFixed(0)} MB tree)`;
    for (const [label, registryPort, webPort] of [["loopback", registry.port, web.port], [`a ${LINK_MBPS} MB/s link`, registryLink.port, webLink.port]] as const) {
      const reg = `127.0.0.1:${registryPort}`;
      const skopeo = (dir: string) => `mkdir -p ${dir} && skopeo copy -q --src-tls-verify=false docker://${reg}/${REPO}:bench-all dir:${join(dir, "image")}`;
      const times = await measure([
        ["castle-oci", castlePull(`oci://${reg}/${REPO}`, true)],
        ["castle-oci-download", castleDownload(`oci://${reg}/${REPO}`)],
        ["skopeo", async (run) => {
          const dir = join(base, `skopeo-${run}`);
          await sh(skopeo(dir));
          rmSync(dir, { recursive: true, force: true });
        }],
        ["skopeo-tar", async (run) => {
          const dir = join(base, `skopeo-tar-${run}`);
          await sh(skopeo(dir));
          await untar(dir, (blob) => `cat ${join(dir, "image", blob)}`);
          rmSync(dir, { recursive: true, force: true });
        }],
        ["castle-http", castlePull(`http://127.0.0.1:${webPort}/`, true)],
        ["curl-tar", async (run) => {
          const dir = join(base, `curl-${run}`);
          await untar(dir, (blob) => `curl -sSf http://127.0.0.1:${webPort}/blobs/sha256/${blob}`);
          rmSync(dir, { recursive: true, force: true });
        }],
      ]);
      const rate = (ms: number) => `${(blobMb / (ms / 1000)).toFixed(0)} MB/s`;
      console.log(`over ${label}: castle oci ${rate(times["castle-oci"]!)}, castle oci download only ${rate(times["castle-oci-download"]!)}, skopeo ${rate(times.skopeo!)}, skopeo+tar ${rate(times["skopeo-tar"]!)}, castle http ${rate(times["castle-http"]!)}, curl|tar ${rate(times["curl-tar"]!)} (of blobs)`);
      rows.push(
        row(`pull ${what} from an OCI registry over ${label}, concurrency ${CONCURRENCY}`, times["castle-oci"]!, times.skopeo!, "skopeo copy to a directory (download only)"),
        row(`pull ${what} from an OCI registry over ${label}, concurrency ${CONCURRENCY}`, times["castle-oci"]!, times["skopeo-tar"]!, "skopeo copy, then tar -x --zstd of each blob"),
        row(`download the ${records.length} blobs from an OCI registry over ${label} to files, sha256 checked (no unpack), concurrency ${CONCURRENCY}`, times["castle-oci-download"]!, times.skopeo!, "skopeo copy to a directory (download only)"),
        row(`pull ${what} from a static web server over ${label}, concurrency ${CONCURRENCY}`, times["castle-http"]!, times["curl-tar"]!, `curl | tar -x --zstd, ${CONCURRENCY} at once`),
      );
    }
    const signing = await measure([
      ["verify", castlePull(`http://127.0.0.1:${web.port}/`, true)],
      ["trust", castlePull(`http://127.0.0.1:${web.port}/`, false)],
      ["sign", async (run) => {
        await push(pathToFileURL(join(base, `signed-${run}`)).href, true);
        rmSync(join(base, `signed-${run}`), { recursive: true, force: true });
      }],
      ["plain", async (run) => {
        await push(pathToFileURL(join(base, `plain-${run}`)).href, false);
        rmSync(join(base, `plain-${run}`), { recursive: true, force: true });
      }],
    ]);
    // The signatures' own cost, measured alone (the pulls above differ by less than their noise):
    // verifying and signing the 20 manifests, 200 times over, added to the pull and push it guards.
    const manifests = blobs.map((m) => ({ ...m, trust: undefined }));
    const policy = new TrustPolicy([parsePublicKey(key.publicLine)]);
    const cost = (fn: () => void) => {
      const started = performance.now();
      for (let i = 0; i < 200; i++) fn();
      return (performance.now() - started) / 200;
    };
    const verifyMs = cost(() => manifests.forEach((m) => policy.judge(m)));
    const signMs = cost(() => manifests.forEach((m) => signManifest({ ...m, signatures: [] }, signingKey)));
    rows.push(
      row(`pull ${what} over HTTP, verifying every signature (target: ≤ 1.02)`, signing.verify!, signing.trust!, "the same pull, signatures not checked"),
      row(`pull ${what} over HTTP + checking its ${records.length} signatures (${verifyMs.toFixed(2)} ms, measured alone; target: ≤ 1.02)`, signing.trust! + verifyMs, signing.trust!, "the same pull, signatures not checked"),
      row(`push ${what} to a directory, signing every manifest (target: ≤ 1.02)`, signing.sign!, signing.plain!, "the same push, unsigned"),
      row(`push ${what} + signing its ${records.length} manifests (${signMs.toFixed(2)} ms, measured alone; target: ≤ 1.02)`, signing.plain! + signMs, signing.plain!, "the same push, unsigned"),
    );
    return rows;
  } finally {
    for (const server of servers) server.stop();
    await registry.dispose();
    rmSync(base, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().then(printTable, (error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
