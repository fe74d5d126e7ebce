// Tests for the S3 backend (and the remote protocol over it) against a real s3rver on loopback: round trips between two
// stores, nothing re-uploaded, tampered and half-published data detected and discarded, hostile
// blobs refused, servers that die mid-transfer.

import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CacheRemote, digestTree, openRemote, walkTree } from "../src/index";
import type { S3Backend } from "../src/remote/s3-backend";
import { S3RVER_CREDENTIALS, type S3Server, startS3Server } from "./helpers/s3-server";
import { commitLayer, keyOf, newStore, stagingLeft } from "./helpers/stores";
import { type TcpProxy, startProxy } from "./helpers/tcp-proxy";
import { craftArchive, snapshot, tempDir, writeRandomFile } from "./helpers/trees";

let server: S3Server;
let prefixCount = 0;

beforeAll(async () => {
  server = await startS3Server();
});
afterAll(async () => {
  await server.dispose();
});

/** A remote under a fresh prefix, so tests do not see each other's objects. */
function remoteFor(endpoint = server.endpoint, options = {}): CacheRemote {
  prefixCount++;
  return openRemote(`s3://castle/t${prefixCount}/cache?endpoint=${endpoint}`, {
    credentials: S3RVER_CREDENTIALS, negativeTtlMs: 0, ...options,
  });
}

function prefixOf(remote: CacheRemote): string {
  return (remote.backend as S3Backend).s3.config.prefix;
}

async function bucketObjects(prefix: string): Promise<string[]> {
  const { ListObjectsV2Command } = await import("@aws-sdk/client-s3");
  const out = await server.client().send(new ListObjectsV2Command({ Bucket: "castle", Prefix: `${prefix}/` }));
  return (out.Contents ?? []).map((o) => (o.Key as string).slice(prefix.length + 1)).sort();
}

describe("CacheRemote round trip", () => {
  it("moves layers from a CI store to a laptop store with equal digests, and uploads nothing twice", async () => {
    const ci = newStore();
    const laptop = newStore();
    const records = [
      await commitLayer(ci, "base"),
      await commitLayer(ci, "tools", (root) => {
        mkdirSync(join(root, "usr/local/bin"), { recursive: true });
        writeFileSync(join(root, "usr/local/bin/run"), "#!/bin/sh\n", { mode: 0o755 });
        symlinkSync("run", join(root, "usr/local/bin/go"));
        mkdirSync(join(root, "var/empty"), { recursive: true });
      }),
      await commitLayer(ci, "app"),
    ];
    const proxy = await startProxy(server.port);
    try {
      const remote = remoteFor(proxy.endpoint);
      for (const record of records) {
        const result = await remote.push(record, ci);
        expect(result.skipped).toBe(false);
        expect(result.uploadedBytes).toBeGreaterThan(0);
      }
      proxy.reset();
      for (const record of records) expect(await remote.push(record, ci)).toEqual({ uploadedBytes: 0, skipped: true });
      // The second export sends only a manifest GET and a blob HEAD per key: no bodies.
      expect(proxy.stats.up).toBeLessThan(records.length * 2500);
      const objects = await bucketObjects(prefixOf(remote));
      expect(objects.filter((o) => o.startsWith("keys/"))).toHaveLength(3);
      expect(objects.filter((o) => o.startsWith("blobs/sha256/"))).toHaveLength(3);

      const progress: number[] = [];
      for (const record of records) {
        const pulled = await remote.pull(record.key, laptop, { onProgress: (p) => progress.push(p.bytesDone) });
        expect(pulled).toMatchObject({ key: record.key, digest: record.digest, origin: "pulled", name: record.name });
        expect(digestTree(laptop.treePath(record.digest)).digest).toBe(record.digest);
      }
      expect(progress.length).toBeGreaterThan(3);
      const kinds = walkTree(laptop.treePath(records[0]!.digest));
      expect(kinds.find((e) => e.path === "gone")?.kind).toBe("whiteout");
      expect(kinds.find((e) => e.path === "opt/opaque")).toMatchObject({ opaque: true });
      expect(stagingLeft(laptop)).toEqual([]);
      expect(stagingLeft(ci)).toEqual([]);
      // Pulling what the store has costs no download.
      proxy.reset();
      expect(await remote.pull(records[0]!.key, laptop)).toMatchObject({ digest: records[0]!.digest });
      expect(proxy.stats.down).toBeLessThan(3000);
      await remote.close();
    } finally {
      await proxy.close();
    }
  });

  it("reports a missing key as undefined and remembers the miss", async () => {
    const remote = openRemote(`s3://castle/misses?endpoint=${server.endpoint}`, {
      credentials: S3RVER_CREDENTIALS, negativeCacheDir: tempDir(),
    });
    const proxyless = newStore();
    expect(await remote.lookup(keyOf("nothing"))).toBeUndefined();
    expect(await remote.pull(keyOf("nothing"), proxyless)).toBeUndefined();
    await server.stop();
    try {
      // Served from the negative cache: the stopped server is not asked.
      expect(await remote.lookup(keyOf("nothing"))).toBeUndefined();
    } finally {
      await server.start();
    }
    const record = await commitLayer(newStore(), "nothing");
    const store = newStore();
    const ci = newStore();
    const again = await commitLayer(ci, "nothing");
    expect(again.key).toBe(record.key);
    await remote.push(again, ci); // A push forgets the miss.
    expect(await remote.pull(again.key, store)).toMatchObject({ digest: again.digest });
    await remote.close();
  });
});

describe("CacheRemote refuses bad remote data", () => {
  it("detects a tampered blob, discards it, commits nothing", async () => {
    const ci = newStore();
    const laptop = newStore();
    const record = await commitLayer(ci, "victim");
    const remote = remoteFor();
    await remote.push(record, ci);
    const manifest = await remote.lookup(record.key);
    const evil = await craftArchive([{ name: "evil", body: "x" }], "zstd");
    const client = server.client();
    const blobKey = `${prefixOf(remote)}/blobs/sha256/${manifest!.blob}`;
    await client.send(new PutObjectCommand({ Bucket: "castle", Key: blobKey, Body: evil, Metadata: { "castle-sha256": manifest!.blob } }));
    await expect(remote.pull(record.key, laptop)).rejects.toMatchObject({ code: "CASTLE_REMOTE_CORRUPT" });
    expect(laptop.lookup(record.key)).toBeUndefined();
    expect(laptop.hasTree(record.digest)).toBe(false);
    expect(stagingLeft(laptop)).toEqual([]);
    // Push does not trust the tampered blob (wrong size and ETag) and repairs it.
    expect((await remote.push(record, ci)).skipped).toBe(false);
    expect(await remote.pull(record.key, laptop)).toMatchObject({ digest: record.digest });
    await remote.close();
  });

  it("ignores a manifest whose blob is missing, and push repairs it", async () => {
    const ci = newStore();
    const laptop = newStore();
    const record = await commitLayer(ci, "orphan");
    const remote = remoteFor();
    const fake = { key: record.key, digest: record.digest, blob: "f".repeat(64), size: 1234, name: "orphan", created: new Date().toISOString(), castleVersion: "test", signatures: [] };
    await remote.writeManifest(fake);
    expect(await remote.pull(record.key, laptop)).toBeUndefined();
    expect(laptop.lookup(record.key)).toBeUndefined();
    expect(stagingLeft(laptop)).toEqual([]);
    expect((await remote.push(record, ci)).skipped).toBe(false);
    expect(await remote.pull(record.key, laptop)).toMatchObject({ digest: record.digest });
    await remote.close();
  });

  it("refuses planted blobs with path traversal, symlink escapes and hardlinks, and a wrong tree", async () => {
    const laptop = newStore();
    const around = snapshot(laptop.root);
    const remote = remoteFor();
    const plant = async (label: string, archive: Buffer, digest = "e".repeat(64)) => {
      const { createHash } = await import("node:crypto");
      const blob = createHash("sha256").update(archive).digest("hex");
      const client = server.client();
      await client.send(new PutObjectCommand({ Bucket: "castle", Key: `${prefixOf(remote)}/blobs/sha256/${blob}`, Body: archive }));
      await remote.writeManifest({ key: keyOf(label), digest, blob, size: archive.length, name: label, created: new Date().toISOString(), castleVersion: "test", signatures: [] });
      return keyOf(label);
    };
    const cases = [
      await plant("dotdot", await craftArchive([{ name: "../../escaped", body: "pwned" }])),
      await plant("symlink", await craftArchive([{ name: "l", type: "symlink", linkname: "/tmp" }, { name: "l/escaped", body: "pwned" }])),
      await plant("hardlink", await craftArchive([{ name: "h", type: "link", linkname: "../../keys/x" }])),
      await plant("wrongtree", await craftArchive([{ name: "fine", body: "but not the tree the manifest names" }])),
    ];
    for (const key of cases) {
      await expect(remote.pull(key, laptop)).rejects.toMatchObject({ code: "CASTLE_REMOTE_CORRUPT" });
      expect(laptop.lookup(key)).toBeUndefined();
    }
    expect(snapshot(laptop.root)).toEqual(around);
    await remote.close();
  });

  it("treats a damaged manifest as CORRUPT, and push overwrites it", async () => {
    const ci = newStore();
    const record = await commitLayer(ci, "garbled");
    const remote = remoteFor();
    await server.client().send(new PutObjectCommand({ Bucket: "castle", Key: `${prefixOf(remote)}/keys/${record.key}`, Body: "{ nope" }));
    await expect(remote.lookup(record.key)).rejects.toMatchObject({ code: "CASTLE_REMOTE_CORRUPT" });
    expect((await remote.push(record, ci)).skipped).toBe(false);
    expect(await remote.lookup(record.key)).toMatchObject({ digest: record.digest });
    await remote.close();
  });
});

describe("CacheRemote when the server dies mid-transfer", () => {
  let big: { ci: ReturnType<typeof newStore>; record: Awaited<ReturnType<typeof commitLayer>> };
  beforeAll(async () => {
    const ci = newStore("file");
    const record = await commitLayer(ci, "big", (root) => {
      for (let i = 0; i < 6; i++) writeRandomFile(join(root, `random-${i}`), 4 << 20, i + 1);
    });
    big = { ci, record };
  });

  async function withCut(afterBytes: number, fn: (proxy: TcpProxy) => Promise<void>): Promise<void> {
    const proxy = await startProxy(server.port, { kind: "cut", afterBytes });
    try {
      await fn(proxy);
    } finally {
      await proxy.close();
    }
  }

  it("uploads large blobs in parts, verified the same way", async () => {
    const remote = remoteFor(server.endpoint, { multipartThreshold: 5 << 20, partSize: 5 << 20 });
    const progress: number[] = [];
    const result = await remote.push(big.record, big.ci, { onProgress: (p) => progress.push(p.bytesDone) });
    expect(result.uploadedBytes).toBeGreaterThan(20 << 20);
    expect(progress.at(-1)).toBe(result.uploadedBytes);
    expect(await remote.push(big.record, big.ci)).toEqual({ uploadedBytes: 0, skipped: true });
    expect(await remote.pull(big.record.key, newStore())).toMatchObject({ digest: big.record.digest });
    await remote.close();
  });

  it("a cancelled pull stops with CASTLE_CANCELLED and leaves nothing", async () => {
    const remote = remoteFor();
    await remote.push(big.record, big.ci);
    const laptop = newStore();
    const controller = new AbortController();
    const pulling = remote.pull(big.record.key, laptop, {
      signal: controller.signal,
      onProgress: (p) => {
        if (p.bytesDone > 1 << 20) controller.abort();
      },
    });
    await expect(pulling).rejects.toMatchObject({ code: "CASTLE_CANCELLED" });
    expect(laptop.lookup(big.record.key)).toBeUndefined();
    expect(stagingLeft(laptop)).toEqual([]);
    await remote.close();
  });

  it("a download cut off leaves nothing, and a later pull succeeds", async () => {
    const prefixRemote = remoteFor();
    await prefixRemote.push(big.record, big.ci);
    const laptop = newStore();
    await withCut(5 << 20, async (proxy) => {
      const url = `s3://castle/${prefixOf(prefixRemote)}?endpoint=${proxy.endpoint}`;
      const flaky = openRemote(url, { credentials: S3RVER_CREDENTIALS, negativeTtlMs: 0, maxAttempts: 1 });
      const error = await flaky.pull(big.record.key, laptop).then(() => undefined, (e: unknown) => e as { code: string; message: string });
      if (process.env.CASTLE_TEST_DEBUG) console.log("cut download:", error?.code, error?.message);
      expect(error?.code).toMatch(/^CASTLE_REMOTE_(UNREACHABLE|CORRUPT)$/);
      expect(laptop.lookup(big.record.key)).toBeUndefined();
      expect(laptop.hasTree(big.record.digest)).toBe(false);
      expect(stagingLeft(laptop)).toEqual([]);
      await flaky.close();
    });
    expect(await prefixRemote.pull(big.record.key, laptop)).toMatchObject({ digest: big.record.digest });
    await prefixRemote.close();
  });

  it("an upload cut off publishes no manifest, and a later push succeeds", async () => {
    const remote = remoteFor();
    const url = `s3://castle/${prefixOf(remote)}`;
    const proxy = await startProxy(server.port);
    const flaky = openRemote(`${url}?endpoint=${proxy.endpoint}`, { credentials: S3RVER_CREDENTIALS, negativeTtlMs: 0, maxAttempts: 1 });
    try {
      const pushing = flaky.push(big.record, big.ci, {
        onProgress: (p) => {
          if (p.bytesDone > 4 << 20) void proxy.close();
        },
      });
      await expect(pushing).rejects.toMatchObject({ code: expect.stringMatching(/^CASTLE_REMOTE_(UNREACHABLE|ERROR|TIMEOUT)$/) });
    } finally {
      await proxy.close().catch(() => {});
      await flaky.close();
    }
    expect((await bucketObjects(prefixOf(remote))).filter((o) => o.startsWith("keys/"))).toEqual([]);
    expect(stagingLeft(big.ci)).toEqual([]);
    expect((await remote.push(big.record, big.ci)).skipped).toBe(false);
    const laptop = newStore();
    expect(await remote.pull(big.record.key, laptop)).toMatchObject({ digest: big.record.digest });
    await remote.close();
  });

  it("a server stopped during a download gives a clean error, then works after restart", async () => {
    const remote = remoteFor();
    await remote.push(big.record, big.ci);
    const laptop = newStore();
    const slowRemote = openRemote(`s3://castle/${prefixOf(remote)}?endpoint=${server.endpoint}`, {
      credentials: S3RVER_CREDENTIALS, negativeTtlMs: 0, maxAttempts: 1,
    });
    let stopped: Promise<void> | undefined;
    const pulling = slowRemote.pull(big.record.key, laptop, {
      onProgress: (p) => {
        if (!stopped && p.bytesDone > 1 << 20) stopped = server.stop();
      },
    });
    const error = await pulling.then(() => undefined, (e: unknown) => e as { code: string });
    await stopped;
    await server.start();
    if (process.env.CASTLE_TEST_DEBUG) console.log("stop mid-download:", error?.code, (error as { message?: string } | undefined)?.message);
    expect(error?.code).toMatch(/^CASTLE_REMOTE_(UNREACHABLE|TIMEOUT)$/);
    expect(laptop.lookup(big.record.key)).toBeUndefined();
    expect(stagingLeft(laptop)).toEqual([]);
    await slowRemote.close();
    expect(await remote.pull(big.record.key, newStore())).toMatchObject({ digest: big.record.digest });
    await remote.close();
  });
});
