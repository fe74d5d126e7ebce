// Reliability: a remote cache that misbehaves, against a real S3 server (s3rver on loopback)
// behind a proxy that injects faults: the server down or dying mid-export, hanging (timeouts),
// answering 500/503, connections cut in the middle of an upload, tampered blobs, manifests whose
// blob is gone or that point at another layer's blob, garbage manifests, wrong credentials. Each
// goes through buildSystem (real sandbox) or the bundled CLI (uid 65534): the build must still
// succeed locally with a warning naming a CASTLE_REMOTE_* code (or fail, exit 5, only with
// --strict-export); the local store must stay consistent; and the bucket must never hold a
// manifest without a complete blob that verifies — also after a later clean export repairs it.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openRemote, openStore, type LocalStore, type Remote, type RemoteOptions } from "@castle/cache";
import { buildGraph, buildSystem, layer, source, system, type BuildEvent, type System } from "@castle/graph";
import { spawn } from "@castle/sandbox";
import { S3RVER_CREDENTIALS, startS3Server, type S3Server } from "../../packages/cache/test/helpers/s3-server";
import { closedPort } from "../../packages/cache/test/helpers/tcp-proxy";
import { busyboxMissing, makeBusyboxRootfs } from "../fixtures/rootfs";
import { checkBucket, deleteObject, getObject, listObjects, putObject } from "./helpers/bucket";
import { builtLayers, cliMissing, describeRun, makeCliHome, runCastle } from "./helpers/cli";
import { useTempDirs, writeDefinition } from "./helpers/definitions";
import { startFaultProxy, type FaultProxy } from "./helpers/fault-proxy";
import { random } from "./helpers/random";
import { checkStore } from "./helpers/store-check";

const skip = busyboxMissing();
if (skip) console.warn(`skipping remote fault tests: ${skip}`);
const cliSkip = skip ?? cliMissing();

const temp = useTempDirs("castle-rel-remote");
let server: S3Server;
let rootfs: string;
let blobDir: string;
let bigBlobDir: string;
let prefixes = 0;

beforeAll(async () => {
  if (skip) return;
  server = await startS3Server();
  rootfs = makeBusyboxRootfs(temp("rootfs"));
  // Layers of data that does not compress: 1 MiB, big enough for an upload to be cut in the
  // middle, and 6 MiB, to go up in two parts of S3's smallest part size.
  const rng = random(42);
  const data = Buffer.alloc(6 << 20);
  for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(Math.floor(rng.next() * 2 ** 32), i);
  [blobDir, bigBlobDir] = [temp("blob"), temp("big-blob")];
  for (const [dir, size] of [[blobDir, 1 << 20], [bigBlobDir, 6 << 20]] as const) {
    mkdirSync(join(dir, "opt"), { mode: 0o755 });
    writeFileSync(join(dir, "opt/blob.bin"), data.subarray(0, size), { mode: 0o644 });
  }
});
afterAll(async () => {
  await server?.dispose();
});

/** A fresh prefix in the bucket, so cases never see each other's objects. */
function newPrefix(): string {
  return `faults${++prefixes}`;
}

function remoteAt(prefix: string, endpoint: string, options: RemoteOptions = {}): Remote {
  return openRemote(`s3://${server.bucket}/${prefix}`, {
    endpoint, credentials: S3RVER_CREDENTIALS, region: "us-east-1", negativeTtlMs: 0,
    connectTimeoutMs: 1000, idleTimeoutMs: 2000, maxAttempts: 1, ...options,
  });
}

function definition(tag = "v1", big = false): System {
  const base = layer.import({ name: "base", from: source.local(rootfs) });
  const blob = layer.import({ name: "blob", from: source.local(big ? bigBlobDir : blobDir) });
  const app = layer({ name: "app", runDeps: [base], buildDeps: [blob], script: `echo app-${tag} > /app; wc -c /opt/blob.bin >> /app` });
  const tool = layer({ name: "tool", runDeps: [base, blob], script: `echo tool-${tag} > /tool` });
  return system({ name: "remote-faults", layers: [app, tool] });
}

interface Run {
  events: BuildEvent[];
  built: string[];
  pulled: string[];
  warnings: Array<{ code?: string; message: string }>;
  digests: Map<string, string>;
}

async function build(store: LocalStore, options: { remote?: Remote; exportRemote?: Remote; strictExport?: boolean; tag?: string; big?: boolean } = {}): Promise<Run> {
  const events: BuildEvent[] = [];
  const outcome = await buildSystem(buildGraph(definition(options.tag, options.big)), {
    store, sandbox: { spawn }, onEvent: (e) => events.push(e), sources: { overrides: new Map(), env: {} },
    remote: options.remote, exportRemote: options.exportRemote, strictExport: options.strictExport,
  });
  const names = (pick: (e: BuildEvent) => boolean) => events.filter(pick).map((e) => (e as { layer: string }).layer).sort();
  expect(checkStore(store.root).problems).toEqual([]);
  return {
    events,
    built: names((e) => e.type === "building"),
    pulled: names((e) => e.type === "done" && e.origin === "pulled"),
    warnings: events.flatMap((e) => (e.type === "warning" ? [{ code: e.code, message: e.message }] : [])),
    digests: new Map(outcome.used.map((r) => [r.name, r.digest])),
  };
}

async function expectBucketSound(prefix: string, manifests?: number): Promise<void> {
  const report = await checkBucket(server.client(), server.bucket, prefix);
  expect(report.problems).toEqual([]);
  if (manifests !== undefined) expect(report.manifests).toBe(manifests);
}

/** A clean CI export under prefix (all four layers), returning the CI run. */
async function exportClean(prefix: string): Promise<Run> {
  const ci = await build(openStore(temp("ci")), { exportRemote: remoteAt(prefix, server.endpoint) });
  expect(ci.warnings).toEqual([]);
  await expectBucketSound(prefix, 4);
  return ci;
}

const LAYERS = ["app", "base", "blob", "tool"];
const SCRIPTED = ["app", "tool"];

describe.skipIf(skip)("remote faults through buildSystem", () => {
  it("server down: builds locally with one UNREACHABLE warning; strict export fails", async () => {
    const port = await closedPort();
    const down = remoteAt("down", `http://127.0.0.1:${port}`);
    const run = await build(openStore(temp("store")), { remote: down, exportRemote: down });
    expect(run.built).toEqual(SCRIPTED);
    expect(run.warnings[0]).toMatchObject({ code: "CASTLE_REMOTE_UNREACHABLE" });
    await expect(build(openStore(temp("store")), { exportRemote: down, strictExport: true })).rejects.toMatchObject({ code: "CASTLE_REMOTE_UNREACHABLE" });
  });

  it("server dies in the middle of an export: the build succeeds, the bucket holds only whole layers", async () => {
    const prefix = newPrefix();
    const proxy = await startFaultProxy(server.port);
    try {
      const store = openStore(temp("store"));
      const events: BuildEvent[] = [];
      await buildSystem(buildGraph(definition()), {
        store, sandbox: { spawn }, sources: { overrides: new Map(), env: {} },
        exportRemote: remoteAt(prefix, proxy.endpoint),
        onEvent: (event) => {
          events.push(event);
          // After the first layer is exported, every connection is cut from then on.
          if (event.type === "pushed") proxy.fault = { kind: "cut-upload", afterBytes: 0 };
        },
      });
      expect(events.filter((e) => e.type === "warning").length).toBeGreaterThan(0);
      expect(checkStore(store.root).problems).toEqual([]);
      const report = await checkBucket(server.client(), server.bucket, prefix);
      expect(report.problems).toEqual([]);
      expect(report.manifests).toBeLessThan(4);
      // A later clean export completes the bucket.
      proxy.fault = { kind: "pass" };
      const again = await build(store, { exportRemote: remoteAt(prefix, proxy.endpoint) });
      expect(again.warnings).toEqual([]);
      await expectBucketSound(prefix, 4);
    } finally {
      await proxy.close();
    }
  });

  it("a server that accepts and never answers: timeouts become one warning, the build finishes in bounded time", async () => {
    const proxy = await startFaultProxy(server.port, { kind: "hang" });
    try {
      const slow = remoteAt(newPrefix(), proxy.endpoint, { idleTimeoutMs: 500, connectTimeoutMs: 500 });
      const started = Date.now();
      const run = await build(openStore(temp("store")), { remote: slow, exportRemote: slow });
      expect(run.built).toEqual(SCRIPTED);
      expect(run.warnings.map((w) => w.code)).toContain("CASTLE_REMOTE_TIMEOUT");
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      await proxy.close();
    }
  });

  it("a download that stalls half way: the pull times out, the layer is built locally, nothing partial is kept", async () => {
    const prefix = newPrefix();
    await exportClean(prefix);
    const proxy = await startFaultProxy(server.port, { kind: "hang", match: { method: "GET", path: /\/blobs\// } });
    try {
      const laptop = openStore(temp("laptop"));
      const run = await build(laptop, { remote: remoteAt(prefix, proxy.endpoint, { idleTimeoutMs: 500 }) });
      expect(run.warnings.map((w) => w.code)).toContain("CASTLE_REMOTE_TIMEOUT");
      expect(run.pulled).toEqual([]);
      expect(run.built).toEqual(SCRIPTED);
    } finally {
      await proxy.close();
    }
  });

  it("500s and 503s: warnings and local builds; a strict export fails; nothing is published", async () => {
    for (const [status, code] of [[500, "InternalError"], [503, "SlowDown"]] as const) {
      const prefix = newPrefix();
      const proxy = await startFaultProxy(server.port, { kind: "status", status, code });
      try {
        const broken = remoteAt(prefix, proxy.endpoint, { maxAttempts: 2 });
        const run = await build(openStore(temp("store")), { remote: broken, exportRemote: broken });
        expect(run.built).toEqual(SCRIPTED);
        expect(run.warnings.length).toBeGreaterThan(0);
        expect(run.warnings.every((w) => w.code?.startsWith("CASTLE_REMOTE_")), JSON.stringify(run.warnings)).toBe(true);
        await expect(build(openStore(temp("store")), { exportRemote: broken, strictExport: true })).rejects.toMatchObject({ code: expect.stringMatching(/^CASTLE_REMOTE_/) });
      } finally {
        await proxy.close();
      }
      expect(await listObjects(server.client(), server.bucket, prefix)).toEqual([]);
    }
  });

  it("manifest writes fail after the blobs went up: no manifest is published; a later export publishes them", async () => {
    const prefix = newPrefix();
    const proxy = await startFaultProxy(server.port, { kind: "status", status: 500, code: "InternalError", match: { method: "PUT", path: /\/keys\// } });
    try {
      const store = openStore(temp("store"));
      const run = await build(store, { exportRemote: remoteAt(prefix, proxy.endpoint) });
      // One warning for the remote, naming what it cost: not one per layer.
      expect(run.warnings).toEqual([{ code: "CASTLE_REMOTE_ERROR", message: expect.stringMatching(/ failed: 4 layers not exported \(app, base, blob, tool\) — /) }]);
      const objects = await listObjects(server.client(), server.bucket, prefix);
      expect(objects.filter((o) => o.includes("/keys/"))).toEqual([]);
      expect(objects.filter((o) => o.includes("/blobs/"))).toHaveLength(4);
      proxy.fault = { kind: "pass" };
      const again = await build(store, { exportRemote: remoteAt(prefix, proxy.endpoint) });
      expect(again.warnings).toEqual([]);
      // The blobs were there and checked out: only manifests went up this time.
      expect(again.events.filter((e) => e.type === "pushed").every((e) => e.type === "pushed" && e.uploadedBytes === 0)).toBe(true);
      await expectBucketSound(prefix, 4);
    } finally {
      await proxy.close();
    }
  });

  it("uploads cut in the middle (single and multipart): no manifest; a later export replaces the partial blobs", async () => {
    for (const multipart of [false, true]) {
      const prefix = newPrefix();
      const proxy = await startFaultProxy(server.port, { kind: "cut-upload", afterBytes: 300_000, match: { path: /\/blobs\// } });
      const options: RemoteOptions = multipart ? { multipartThreshold: 5 << 20, partSize: 5 << 20 } : {};
      try {
        const store = openStore(temp("store"));
        const big = multipart;
        const run = await build(store, { exportRemote: remoteAt(prefix, proxy.endpoint, options), big });
        // base (busybox) and blob are big enough to be cut (blob in parts when multipart); a cut
        // connection is a remote that is gone for this run. One warning per kind of failure,
        // each naming what it cost — never one per layer.
        const codes = run.warnings.map((w) => w.code);
        expect(new Set(codes).size, JSON.stringify(run.warnings)).toBe(codes.length);
        expect(run.warnings.every((w) => / layers? not exported \(/.test(w.message)), JSON.stringify(run.warnings)).toBe(true);
        expect(run.warnings.some((w) => /not exported \((\w+, )*blob[,)]/.test(w.message)), JSON.stringify(run.warnings)).toBe(true);
        await expectBucketSound(prefix);
        const manifests = (await listObjects(server.client(), server.bucket, prefix)).filter((o) => o.includes("/keys/"));
        expect(manifests.length).toBeLessThanOrEqual(2);
        proxy.fault = { kind: "pass" };
        const again = await build(store, { exportRemote: remoteAt(prefix, proxy.endpoint, options), big });
        expect(again.warnings).toEqual([]);
        await expectBucketSound(prefix, 4);
        const laptop = await build(openStore(temp("laptop")), { remote: remoteAt(prefix, server.endpoint), big });
        expect(laptop.built).toEqual([]);
        // Only that what it pulled is unsigned (this remote signs nothing).
        expect(laptop.warnings.map((w) => w.code)).toEqual(["CASTLE_REMOTE_UNSIGNED"]);
      } finally {
        await proxy.close();
      }
    }
  });

  it("an upload refused before it reads its file (parts below S3's minimum) is a warning, not a crash", async () => {
    // lib-storage refuses a 1 MiB part size up front; the packed blob was deleted right after,
    // and the unread file stream used to open it then: an uncaught ENOENT that killed castle.
    const prefix = newPrefix();
    const run = await build(openStore(temp("store")), { exportRemote: remoteAt(prefix, server.endpoint, { multipartThreshold: 1 << 20, partSize: 1 << 20 }) });
    expect(run.warnings).toEqual([{ code: "CASTLE_REMOTE_ERROR", message: expect.stringMatching(/ failed: 2 layers not exported \(base, blob\)/) }]);
    await new Promise((resolve) => setTimeout(resolve, 200)); // Time for a late stream error to surface.
    await expectBucketSound(prefix, 2);
  });

  it("tampered blobs (a flipped byte, cut short, replaced) are refused: local builds, nothing bad committed", async () => {
    const prefix = newPrefix();
    const ci = await exportClean(prefix);
    const client = server.client();
    const blobs = (await listObjects(client, server.bucket, prefix)).filter((o) => o.includes("/blobs/"));
    for (const [i, object] of blobs.entries()) {
      const bytes = Buffer.from((await getObject(client, server.bucket, object))!);
      const metadata = { "castle-sha256": object.split("/").pop()! };
      if (i % 3 === 0) bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
      await putObject(client, server.bucket, object, i % 3 === 1 ? bytes.subarray(0, bytes.length - 100) : i % 3 === 2 ? Buffer.from("replaced") : bytes, metadata);
    }
    const laptop = openStore(temp("laptop"));
    const run = await build(laptop, { remote: remoteAt(prefix, server.endpoint) });
    expect(run.pulled).toEqual([]);
    expect(run.warnings.length).toBeGreaterThan(0);
    expect(run.warnings.every((w) => w.code === "CASTLE_REMOTE_CORRUPT"), JSON.stringify(run.warnings)).toBe(true);
    // What the laptop has is what it built itself: the same as CI's.
    for (const name of LAYERS) expect(run.digests.get(name), name).toBe(ci.digests.get(name));
  });

  it("a manifest pointing at another layer's blob is refused by the output digest check", async () => {
    const prefix = newPrefix();
    const ci = await exportClean(prefix);
    const client = server.client();
    const manifests = new Map<string, { key: string; blob: string; size: number; digest: string; name: string }>();
    for (const object of (await listObjects(client, server.bucket, prefix)).filter((o) => o.includes("/keys/"))) {
      const manifest = JSON.parse((await getObject(client, server.bucket, object))!.toString()) as { key: string; blob: string; size: number; digest: string; name: string };
      manifests.set(manifest.name, manifest);
    }
    const app = manifests.get("app")!;
    const tool = manifests.get("tool")!;
    await putObject(client, server.bucket, `${prefix}/keys/${app.key}`, JSON.stringify({ ...app, blob: tool.blob, size: tool.size }));
    const run = await build(openStore(temp("laptop")), { remote: remoteAt(prefix, server.endpoint) });
    expect(run.built).toEqual(["app"]);
    // The refusal, then what the other layers were: unsigned (this remote signs nothing).
    expect(run.warnings.map((w) => w.code)).toEqual(["CASTLE_REMOTE_CORRUPT", "CASTLE_REMOTE_UNSIGNED"]);
    expect(run.digests.get("app")).toBe(ci.digests.get("app"));
  });

  it("manifests whose blobs are gone are misses; the next export repairs them", async () => {
    const prefix = newPrefix();
    await exportClean(prefix);
    const client = server.client();
    for (const object of (await listObjects(client, server.bucket, prefix)).filter((o) => o.includes("/blobs/"))) {
      await deleteObject(client, server.bucket, object);
    }
    expect((await checkBucket(client, server.bucket, prefix)).problems.length).toBe(4);
    const laptop = openStore(temp("laptop"));
    const run = await build(laptop, { remote: remoteAt(prefix, server.endpoint), exportRemote: remoteAt(prefix, server.endpoint) });
    expect(run.built).toEqual(SCRIPTED);
    expect(run.pulled).toEqual([]);
    await expectBucketSound(prefix, 4);
    const third = await build(openStore(temp("third")), { remote: remoteAt(prefix, server.endpoint) });
    expect(third.built).toEqual([]);
  });

  it("garbage manifests are CORRUPT warnings and local builds; the next export overwrites them", async () => {
    const prefix = newPrefix();
    await exportClean(prefix);
    const client = server.client();
    const garbage = ["not json at all", "{}", JSON.stringify({ key: "0".repeat(64), digest: "x", blob: "y", size: -1 }), "null"];
    const objects = (await listObjects(client, server.bucket, prefix)).filter((o) => o.includes("/keys/"));
    for (const [i, object] of objects.entries()) await putObject(client, server.bucket, object, garbage[i % garbage.length]!);
    const run = await build(openStore(temp("laptop")), { remote: remoteAt(prefix, server.endpoint), exportRemote: remoteAt(prefix, server.endpoint) });
    expect(run.pulled).toEqual([]);
    expect(run.warnings.length).toBeGreaterThan(0);
    expect(run.warnings.filter((w) => !w.message.startsWith("export")).every((w) => w.code === "CASTLE_REMOTE_CORRUPT"), JSON.stringify(run.warnings)).toBe(true);
    await expectBucketSound(prefix, 4);
  });

  it("wrong credentials (unknown key, bad signature): one AUTH warning, local builds; a strict export fails", async () => {
    // s3rver knows its access keys but does not check SigV4 signatures: a proxy answers for it.
    const proxy = await startFaultProxy(server.port, { kind: "status", status: 403, code: "SignatureDoesNotMatch" });
    try {
      for (const [endpoint, credentials] of [
        [server.endpoint, { accessKeyId: "NOT-A-KEY", secretAccessKey: "S3RVER" }],
        [proxy.endpoint, { accessKeyId: "S3RVER", secretAccessKey: "not-the-secret" }],
      ] as const) {
        const prefix = newPrefix();
        const wrong = remoteAt(prefix, endpoint, { credentials });
        const run = await build(openStore(temp("store")), { remote: wrong, exportRemote: wrong });
        expect(run.built).toEqual(SCRIPTED);
        expect(run.warnings[0], endpoint).toMatchObject({ code: "CASTLE_REMOTE_AUTH", message: expect.stringMatching(/check the credentials/) });
        // The import side gives up on the remote after the first refusal (lookups already in
        // flight then may warn too): never a warning per layer.
        const imports = run.warnings.filter((w) => !w.message.startsWith("export"));
        expect(imports.length).toBeLessThan(LAYERS.length);
        expect(imports.every((w) => w.code === "CASTLE_REMOTE_AUTH")).toBe(true);
        await expect(build(openStore(temp("store")), { exportRemote: wrong, strictExport: true })).rejects.toMatchObject({ code: "CASTLE_REMOTE_AUTH" });
        expect(await listObjects(server.client(), server.bucket, prefix)).toEqual([]);
      }
    } finally {
      await proxy.close();
    }
  });
});

describe.skipIf(cliSkip)("remote faults through the castle CLI as an unprivileged user", () => {
  const cliDefinition = () =>
    writeDefinition(temp("def"), {
      "castle.ts": `import { layer, source, system } from "castle";
const base = layer.import({ name: "base", from: source.local(${JSON.stringify(rootfs)}) });
const blob = layer.import({ name: "blob", from: source.local(${JSON.stringify(blobDir)}) });
const app = layer({ name: "app", runDeps: [base, blob], script: "echo app > /app" });
export default system({ name: "cli-remote", layers: [app] });
`,
    });
  const url = (prefix: string, endpoint: string) => `s3://${server.bucket}/${prefix}?endpoint=${endpoint}`;
  const creds = { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER", AWS_REGION: "us-east-1" };

  it("with the remote down: exit 0 and a warning; with --strict-export: exit 5", async () => {
    const home = makeCliHome();
    const def = cliDefinition();
    const down = url(newPrefix(), `http://127.0.0.1:${await closedPort()}`);
    const lenient = await runCastle(home, ["build", def, "--plain", "--import-cache", down, "--export-cache", down], { env: creds });
    expect(lenient.code, describeRun(lenient)).toBe(0);
    expect(lenient.stderr).toMatch(/^warning: .*cannot reach the remote cache/m);
    expect(lenient.stdout).toMatch(/^[0-9a-f]{64}\n$/);
    const strict = await runCastle(makeCliHome(), ["build", def, "--plain", "--export-cache", down, "--strict-export"], { env: creds });
    expect(strict.code, describeRun(strict)).toBe(5);
    expect(strict.stderr).toMatch(/^castle: cannot reach the remote cache/m);
    expect(strict.stderr).not.toMatch(/internal error/);
  });

  it("with 500s: exit 0 and warnings; with --strict-export: exit 5, and nothing published", async () => {
    const prefix = newPrefix();
    const proxy = await startFaultProxy(server.port, { kind: "status", status: 500, code: "InternalError" });
    try {
      const def = cliDefinition();
      const lenient = await runCastle(makeCliHome(), ["build", def, "--plain", "--export-cache", url(prefix, proxy.endpoint)], { env: creds });
      expect(lenient.code, describeRun(lenient)).toBe(0);
      expect(lenient.stderr).toMatch(/^warning: s3:\/\/\S+ failed: 3 layers not exported \(app, base, blob\) — /m);
      expect(lenient.stderr.match(/^warning:/gm)).toHaveLength(1);
      const home = makeCliHome();
      const strict = await runCastle(home, ["build", def, "--plain", "--export-cache", url(prefix, proxy.endpoint), "--strict-export"], { env: creds });
      expect(strict.code, describeRun(strict)).toBe(5);
      expect(checkStore(home.cache).problems).toEqual([]);
    } finally {
      await proxy.close();
    }
    expect(await listObjects(server.client(), server.bucket, prefix)).toEqual([]);
  });

  it("with wrong credentials: exit 0 and an access warning; with --strict-export: exit 5", async () => {
    const def = cliDefinition();
    const prefix = newPrefix();
    // s3rver checks the access key, not the signature.
    const wrong = { ...creds, AWS_ACCESS_KEY_ID: "NOT-A-KEY" };
    const lenient = await runCastle(makeCliHome(), ["build", def, "--plain", "--import-cache", url(prefix, server.endpoint), "--export-cache", url(prefix, server.endpoint)], { env: wrong });
    expect(lenient.code, describeRun(lenient)).toBe(0);
    expect(lenient.stderr).toMatch(/^warning: .*refused access/m);
    const strict = await runCastle(makeCliHome(), ["build", def, "--plain", "--export-cache", url(prefix, server.endpoint), "--strict-export"], { env: wrong });
    expect(strict.code, describeRun(strict)).toBe(5);
    expect(strict.stderr).toMatch(/check the credentials/);
  });

  it("`cache push` cut mid-upload exits 5 publishing nothing partial; a clean push and pull then work", async () => {
    const prefix = newPrefix();
    const def = cliDefinition();
    const ci = makeCliHome();
    const built = await runCastle(ci, ["build", def, "--plain"]);
    expect(built.code, describeRun(built)).toBe(0);
    const proxy = await startFaultProxy(server.port, { kind: "cut-upload", afterBytes: 200_000, match: { path: /\/blobs\// } });
    try {
      const cut = await runCastle(ci, ["cache", "push", url(prefix, proxy.endpoint)], { env: creds });
      expect(cut.code, describeRun(cut)).toBe(5);
      // A cut connection is "cannot reach", not "did not answer in time" (the SDK calls a reset
      // connection a TimeoutError, and Castle used to advise raising the timeouts).
      expect(cut.stderr).toMatch(/^castle: cannot reach the remote cache .* while uploading the blob of /m);
      expect(cut.stderr).toMatch(/^hint: nothing partial was published/m);
      expect(cut.stderr).not.toMatch(/internal error/);
      // Only Castle's own lines: the SDK's console chatter ("An error was encountered in a
      // non-retryable streaming request.") used to come first.
      expect(cut.stderr.split("\n").filter(Boolean).every((line) => /^(castle: |hint: |pushed |present )/.test(line)), cut.stderr).toBe(true);
      await expectBucketSound(prefix);
      expect(checkStore(ci.cache).problems).toEqual([]);
    } finally {
      await proxy.close();
    }
    const push = await runCastle(ci, ["cache", "push", url(prefix, server.endpoint)], { env: creds });
    expect(push.code, describeRun(push)).toBe(0);
    await expectBucketSound(prefix);
    const laptop = makeCliHome();
    const pulled = await runCastle(laptop, ["build", def, "--plain", "--import-cache", url(prefix, server.endpoint)], { env: creds });
    expect(pulled.code, describeRun(pulled)).toBe(0);
    expect(builtLayers(pulled.stderr)).toEqual([]);
    expect(pulled.stdout).toBe(built.stdout);
    expect(checkStore(laptop.cache).problems).toEqual([]);
  });
});
