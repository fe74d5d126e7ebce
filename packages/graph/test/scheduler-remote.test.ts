// Tests for the scheduler with a remote cache on a real S3 server (s3rver on loopback): a
// "laptop" pulls what "CI" exported, pulls only what it needs, and any remote fault — a tampered
// blob, a server that is down — becomes a warning and a local build, never a failed build.

import { mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PutObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { openRemote, openStore, removeTree, type LocalStore, type Remote } from "@castle/cache";
import { spawn } from "@castle/sandbox";
import { S3RVER_CREDENTIALS, startS3Server, type S3Server } from "../../cache/test/helpers/s3-server";
import { busyboxMissing, makeBusyboxRootfs } from "../../../test/fixtures/rootfs";
import { buildGraph, buildSystem, layer, source, system, type BuildEvent, type System } from "../src/index";

const skip = busyboxMissing();
if (skip) console.warn(`skipping remote scheduler tests: ${skip}`);

let server: S3Server;
let rootfs: string;
const temps: string[] = [];
function temp(): string {
  const dir = mkdtempSync(join(tmpdir(), "castle-sched-remote-"));
  temps.push(dir);
  return dir;
}

beforeAll(async () => {
  if (skip) return;
  server = await startS3Server();
  rootfs = makeBusyboxRootfs(temp());
});
afterAll(async () => {
  await server?.dispose();
  for (const dir of temps.splice(0)) removeTree(dir);
});
let prefixCount = 0;
let prefix = "";
afterEach(() => {
  prefix = "";
});

function remote(options: { connectTimeoutMs?: number } = {}): Remote {
  if (!prefix) prefix = `run${++prefixCount}`;
  return openRemote(`s3://${server.bucket}/${prefix}`, {
    endpoint: server.endpoint,
    credentials: S3RVER_CREDENTIALS,
    region: "us-east-1",
    connectTimeoutMs: options.connectTimeoutMs ?? 2000,
    idleTimeoutMs: 5000,
    maxAttempts: 1,
  });
}

function definition(toolScript = "echo tool > /tool"): System {
  const base = layer.import({ name: "base", from: source.local(rootfs) });
  const tool = layer({ name: "tool", runDeps: [base], script: toolScript });
  const app = layer({ name: "app", runDeps: [base], buildDeps: [tool], script: "cat /tool > /app-built-with" });
  return system({ name: "remote-demo", layers: [app] });
}

async function build(store: LocalStore, options: { remote?: Remote; exportRemote?: Remote; strictExport?: boolean; toolScript?: string } = {}) {
  const events: BuildEvent[] = [];
  const outcome = await buildSystem(buildGraph(definition(options.toolScript)), {
    store,
    sandbox: { spawn },
    onEvent: (e) => events.push(e),
    sources: { overrides: new Map(), env: {} },
    remote: options.remote,
    exportRemote: options.exportRemote,
    strictExport: options.strictExport,
  });
  const names = (type: BuildEvent["type"], origin?: string) =>
    events
      .filter((e) => e.type === type && (origin === undefined || (e.type === "done" && e.origin === origin)))
      .map((e) => (e as { layer: string }).layer)
      .sort();
  return { outcome, events, built: names("building"), pulled: names("done", "pulled"), warnings: events.filter((e) => e.type === "warning") };
}

describe.skipIf(skip)("buildSystem with a remote cache", () => {
  it("pulls everything CI exported, and only the layers the system needs", async () => {
    const ci = await build(openStore(temp()), { exportRemote: remote() });
    expect(ci.built).toEqual(["app", "tool"]);
    expect(ci.events.filter((e) => e.type === "pushed").length).toBe(3);
    const laptop = await build(openStore(temp()), { remote: remote() });
    expect(laptop.built).toEqual([]);
    // "tool" is only a build dependency of "app", which was pulled: it is never downloaded.
    expect(laptop.pulled).toEqual(["app", "base"]);
    expect(laptop.outcome.layers.map((l) => l.record.digest)).toEqual(ci.outcome.layers.map((l) => l.record.digest));
  });

  it("exports nothing the second time", async () => {
    const store = openStore(temp());
    await build(store, { exportRemote: remote() });
    const again = await build(store, { exportRemote: remote() });
    const uploaded = again.events.filter((e) => e.type === "pushed").reduce((n, e) => n + (e.type === "pushed" ? e.uploadedBytes : 0), 0);
    expect(uploaded).toBe(0);
  });

  it("builds locally, with a warning, when a remote blob was tampered with", async () => {
    await build(openStore(temp()), { exportRemote: remote() });
    const client = server.client();
    const listed = await client.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: `${prefix}/blobs/` }));
    for (const object of listed.Contents ?? []) {
      await client.send(new PutObjectCommand({ Bucket: server.bucket, Key: object.Key!, Body: Buffer.from("not the blob") }));
    }
    const store = openStore(temp());
    const laptop = await build(store, { remote: remote() });
    // Every blob was replaced, so every layer is rebuilt (base is a local import: no build step).
    expect(laptop.built).toEqual(["app", "tool"]);
    expect(laptop.warnings.map((w) => w.type === "warning" && w.code)).toContain("CASTLE_REMOTE_CORRUPT");
    expect(readdirSync(join(store.root, "tmp"))).toEqual([]);
  });

  it("keys a layer again when the remote copy of its dependency was refused and rebuilt differently", async () => {
    // tool is not reproducible: a rebuild never gives the digest CI's copy has.
    const toolScript = "head -c 16 /dev/urandom | od -An -tx1 > /tool";
    const ci = await build(openStore(temp()), { exportRemote: remote(), toolScript });
    const client = server.client();
    const listed = await client.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: `${prefix}/blobs/` }));
    for (const object of listed.Contents ?? []) {
      await client.send(new PutObjectCommand({ Bucket: server.bucket, Key: object.Key!, Body: Buffer.from("not the blob") }));
    }
    const store = openStore(temp());
    const laptop = await build(store, { remote: remote(), toolScript });
    expect(laptop.built).toEqual(["app", "tool"]);
    // app's key was first computed with the digest CI's tool has; built on the rebuilt tool, it
    // is keyed with what that rebuild really gave, so its key says what it was built from.
    const app = (outcome: typeof ci.outcome) => outcome.layers.find((l) => l.name === "app")!.record;
    expect(app(laptop.outcome).key).not.toBe(app(ci.outcome).key);
    const tool = laptop.outcome.used.find((r) => r.name === "tool")!;
    expect(readFileSync(join(store.treePath(app(laptop.outcome).digest), "app-built-with"), "utf8"))
      .toBe(readFileSync(join(store.treePath(tool.digest), "tool"), "utf8"));
    // A copy refused as bad is no reference: no claim that the build is not reproducible.
    expect(laptop.warnings.map((w) => (w.type === "warning" ? w.message : ""))).not.toContainEqual(expect.stringMatching(/not reproducible/));
  });

  it("builds locally when the remote is down, asking it only once", async () => {
    const down = openRemote("s3://castle/x", {
      endpoint: "http://127.0.0.1:9", credentials: S3RVER_CREDENTIALS, region: "us-east-1", connectTimeoutMs: 1000, maxAttempts: 1,
    });
    const started = Date.now();
    const result = await build(openStore(temp()), { remote: down, exportRemote: down });
    expect(result.built).toEqual(["app", "tool"]);
    expect(result.warnings.length).toBeGreaterThanOrEqual(1);
    expect(result.warnings[0]).toMatchObject({ code: "CASTLE_REMOTE_UNREACHABLE" });
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it("fails an export only when asked to be strict", async () => {
    const down = openRemote("s3://castle/y", {
      endpoint: "http://127.0.0.1:9", credentials: S3RVER_CREDENTIALS, region: "us-east-1", connectTimeoutMs: 1000, maxAttempts: 1,
    });
    const store = openStore(temp());
    const lenient = await build(store, { exportRemote: down });
    expect(lenient.events.at(-1)).toMatchObject({ type: "finished", ok: true });
    await expect(build(store, { exportRemote: down, strictExport: true })).rejects.toMatchObject({ code: "CASTLE_REMOTE_UNREACHABLE" });
  });
});
