// Tests for listing and pruning a remote on s3rver: keep sets, ages, dry runs, and blobs deleted
// only once no manifest names them.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listRemote, openRemote, pruneRemote, pushKeys } from "../src/index";
import { S3RVER_CREDENTIALS, type S3Server, startS3Server } from "./helpers/s3-server";
import { commitLayer, newStore } from "./helpers/stores";

let server: S3Server;
beforeAll(async () => {
  server = await startS3Server();
});
afterAll(async () => {
  await server.dispose();
});

describe("listRemote and pruneRemote", () => {
  it("lists manifests and prunes by keep set and age, blobs last", async () => {
    const ci = newStore();
    const records = [await commitLayer(ci, "keep-me"), await commitLayer(ci, "drop-me"), await commitLayer(ci, "old")];
    const remote = openRemote(`s3://castle/prune?endpoint=${server.endpoint}`, { credentials: S3RVER_CREDENTIALS, negativeTtlMs: 0 });
    await pushKeys(remote, ci, records);
    const listed = await listRemote(remote);
    expect(listed.map((m) => m.name).sort()).toEqual(["drop-me", "keep-me", "old"]);
    await expect(pruneRemote(remote, {})).rejects.toMatchObject({ code: "CASTLE_REMOTE_PRUNE" });

    const dry = await pruneRemote(remote, { keep: [records[0]!.key, records[2]!.key], blobGraceMs: 0, dryRun: true });
    expect(dry.deletedKeys).toEqual([records[1]!.key]);
    expect(dry.deletedBlobs).toHaveLength(1);
    expect(await listRemote(remote)).toHaveLength(3);

    const kept = await pruneRemote(remote, { keep: [records[0]!.key, records[2]!.key], blobGraceMs: 0 });
    expect(kept).toMatchObject({ deletedKeys: [records[1]!.key], keptKeys: 2 });
    expect(kept.freedBytes).toBeGreaterThan(0);
    expect((await listRemote(remote)).map((m) => m.name).sort()).toEqual(["keep-me", "old"]);
    expect(await remote.pull(records[1]!.key, newStore())).toBeUndefined();

    // Age: "now" a day ahead makes everything old except what is kept; the grace period
    // (default 1 hour, measured from that "now") no longer protects the blobs.
    const later = new Date(Date.now() + 86_400_000);
    const aged = await pruneRemote(remote, { olderThanMs: 3_600_000, keep: [records[0]!.key], now: later });
    expect(aged.deletedKeys).toEqual([records[2]!.key]);
    expect(aged.deletedBlobs).toHaveLength(1);
    expect(await remote.pull(records[0]!.key, newStore())).toMatchObject({ digest: records[0]!.digest });
    await remote.close();
  });
});
