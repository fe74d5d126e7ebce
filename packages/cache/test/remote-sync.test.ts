// Tests for the batch helpers on s3rver: manifests published in the given order while blobs go
// in parallel, warnings instead of exceptions unless strict, pulls that skip what is present.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type KeyRecord, type CacheRemote, openRemote, pullKeys, pushKeys } from "../src/index";
import { S3RVER_CREDENTIALS, type S3Server, startS3Server } from "./helpers/s3-server";
import { commitLayer, keyOf, newStore, stagingLeft } from "./helpers/stores";
import { closedPort } from "./helpers/tcp-proxy";
import { writeRandomFile } from "./helpers/trees";

let server: S3Server;
beforeAll(async () => {
  server = await startS3Server();
});
afterAll(async () => {
  await server.dispose();
});

function remoteAt(prefix: string): CacheRemote {
  return openRemote(`s3://castle/${prefix}?endpoint=${server.endpoint}`, { credentials: S3RVER_CREDENTIALS, negativeTtlMs: 0 });
}

describe("pushKeys", () => {
  it("uploads blobs in parallel but publishes manifests in the given order", async () => {
    const ci = newStore();
    const records: KeyRecord[] = [
      // The first layer is the largest, so its blob finishes last.
      await commitLayer(ci, "s-base", (root) => writeRandomFile(`${root}/big`, 6 << 20)),
      await commitLayer(ci, "s-mid"),
      await commitLayer(ci, "s-top"),
    ];
    const remote = remoteAt("sync-order");
    const order: string[] = [];
    const write = remote.writeManifest.bind(remote);
    remote.writeManifest = async (manifest, signal) => {
      order.push(manifest.name);
      await write(manifest, signal);
    };
    const progress = new Set<string>();
    const report = await pushKeys(remote, ci, records, { concurrency: 3, onProgress: (p) => progress.add(p.name) });
    expect(order).toEqual(["s-base", "s-mid", "s-top"]);
    expect(report.warnings).toEqual([]);
    expect(report.outcomes.map((o) => o.status)).toEqual(["uploaded", "uploaded", "uploaded"]);
    expect(report.bytes).toBeGreaterThan(6 << 20);
    expect(progress.has("s-base")).toBe(true);
    const again = await pushKeys(remote, ci, records);
    expect(again.outcomes.map((o) => o.status)).toEqual(["skipped", "skipped", "skipped"]);
    expect(again.bytes).toBe(0);
    expect(stagingLeft(ci)).toEqual([]);
    await remote.close();
  });

  it("turns remote faults into warnings, or throws them when strict", async () => {
    const ci = newStore();
    const records = [await commitLayer(ci, "w-1"), await commitLayer(ci, "w-2")];
    const port = await closedPort();
    const dead = openRemote(`s3://castle/x?endpoint=http://127.0.0.1:${port}`, { credentials: S3RVER_CREDENTIALS, maxAttempts: 1 });
    const report = await pushKeys(dead, ci, records);
    expect(report.outcomes.map((o) => o.status)).toEqual(["failed", "failed"]);
    expect(report.warnings.map((w) => w.code)).toEqual(["CASTLE_REMOTE_UNREACHABLE", "CASTLE_REMOTE_UNREACHABLE"]);
    await expect(pushKeys(dead, ci, records, { strict: true })).rejects.toMatchObject({ code: "CASTLE_REMOTE_UNREACHABLE" });
    const pulls = await pullKeys(dead, newStore(), [keyOf("w-1")]);
    expect(pulls.outcomes[0]).toMatchObject({ status: "failed", error: { code: "CASTLE_REMOTE_UNREACHABLE" } });
    await dead.close();
  });
});

describe("pullKeys", () => {
  it("pulls what is missing, reports what is present or absent", async () => {
    const ci = newStore();
    const records = [await commitLayer(ci, "p-1"), await commitLayer(ci, "p-2"), await commitLayer(ci, "p-3")];
    const remote = remoteAt("sync-pull");
    await pushKeys(remote, ci, records);
    const laptop = newStore();
    await remote.pull(records[0]!.key, laptop);
    const seen: number[] = [];
    const report = await pullKeys(remote, laptop, [...records.map((r) => ({ key: r.key, name: r.name })), keyOf("absent")], {
      concurrency: 2, onProgress: (p) => seen.push(p.bytesDone),
    });
    expect(report.outcomes.map((o) => o.status)).toEqual(["present", "pulled", "pulled", "missing"]);
    expect(report.outcomes[1]?.record?.digest).toBe(records[1]!.digest);
    expect(report.bytes).toBeGreaterThan(0);
    expect(seen.length).toBeGreaterThan(0);
    for (const r of records) expect(laptop.lookup(r.key)?.digest).toBe(r.digest);
    expect(stagingLeft(laptop)).toEqual([]);
    await remote.close();
  });
});
