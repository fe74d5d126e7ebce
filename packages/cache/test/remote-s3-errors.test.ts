// Tests for how remote faults surface: wrong credentials, a missing bucket, a closed port, a
// server that never answers, 5xx answers, and the one "not found" mapping — each through real
// sockets on loopback (s3rver, a silent proxy, a tiny HTTP server).

import { type IncomingHttpHeaders, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isNotFound, openRemote } from "../src/index";
import { S3RVER_CREDENTIALS, type S3Server, startS3Server } from "./helpers/s3-server";
import { commitLayer, keyOf, newStore, stagingLeft } from "./helpers/stores";
import { closedPort, startProxy } from "./helpers/tcp-proxy";

let server: S3Server;
beforeAll(async () => {
  server = await startS3Server();
});
afterAll(async () => {
  await server.dispose();
});

/** A plain HTTP server answering every request with status, recording the headers it saw. */
async function fixedServer(status: number): Promise<{ endpoint: string; seen: IncomingHttpHeaders[]; close(): Promise<void> }> {
  const seen: IncomingHttpHeaders[] = [];
  const http = createServer((req, res) => {
    seen.push(req.headers);
    req.resume();
    res.writeHead(status, { "content-type": "application/xml" });
    res.end(status === 404
      ? "<Error><Code>NoSuchKey</Code><Message>none</Message></Error>"
      : "<Error><Code>InternalError</Code><Message>boom</Message></Error>");
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((resolve) => http.close(() => resolve())),
  };
}

describe("remote faults", () => {
  it("wrong credentials → CASTLE_REMOTE_AUTH saying what to check", async () => {
    const remote = openRemote(`s3://castle/auth?endpoint=${server.endpoint}`, {
      credentials: { accessKeyId: "WRONG", secretAccessKey: "nope" }, maxAttempts: 1,
    });
    const error = await remote.lookup(keyOf("x")).catch((e: unknown) => e as { code: string; message: string });
    expect(error).toMatchObject({ code: "CASTLE_REMOTE_AUTH" });
    expect((error as { message: string }).message).toMatch(/credentials/);
    const ci = newStore();
    await expect(remote.push(await commitLayer(ci, "x"), ci)).rejects.toMatchObject({ code: "CASTLE_REMOTE_AUTH" });
    expect(stagingLeft(ci)).toEqual([]);
    // (s3rver checks SigV4 requests' access key id, not their signature: a wrong secret passes there.)
    await remote.close();
  });

  it("a bucket that does not exist → CASTLE_REMOTE_AUTH naming the bucket", async () => {
    const remote = openRemote(`s3://no-such-bucket/x?endpoint=${server.endpoint}`, { credentials: S3RVER_CREDENTIALS, maxAttempts: 1 });
    await expect(remote.lookup(keyOf("x"))).rejects.toMatchObject({
      code: "CASTLE_REMOTE_AUTH", message: expect.stringContaining("bucket"),
    });
    await remote.close();
  });

  it("a closed port → CASTLE_REMOTE_UNREACHABLE quickly, retries included", async () => {
    const port = await closedPort();
    const remote = openRemote(`s3://castle/x?endpoint=http://127.0.0.1:${port}`, { credentials: S3RVER_CREDENTIALS });
    const started = Date.now();
    const laptop = newStore();
    await expect(remote.pull(keyOf("x"), laptop)).rejects.toMatchObject({
      code: "CASTLE_REMOTE_UNREACHABLE", message: expect.stringContaining("endpoint"),
    });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(stagingLeft(laptop)).toEqual([]);
    await remote.close();
  });

  it("a server that accepts and never answers → CASTLE_REMOTE_TIMEOUT within the configured timeout", async () => {
    const proxy = await startProxy(server.port, { kind: "silent" });
    try {
      const remote = openRemote(`s3://castle/x?endpoint=${proxy.endpoint}`, {
        credentials: S3RVER_CREDENTIALS, idleTimeoutMs: 400, maxAttempts: 2,
      });
      const started = Date.now();
      await expect(remote.lookup(keyOf("slow"))).rejects.toMatchObject({ code: "CASTLE_REMOTE_TIMEOUT" });
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(700);
      expect(elapsed).toBeLessThan(2500);
      await remote.close();
    } finally {
      await proxy.close();
    }
  });

  it("5xx answers → CASTLE_REMOTE_ERROR after retrying", async () => {
    const http = await fixedServer(500);
    try {
      const remote = openRemote(`s3://castle/x?endpoint=${http.endpoint}`, { credentials: S3RVER_CREDENTIALS, maxAttempts: 2 });
      await expect(remote.lookup(keyOf("x"))).rejects.toMatchObject({ code: "CASTLE_REMOTE_ERROR" });
      expect(http.seen.length).toBe(2);
      await remote.close();
    } finally {
      await http.close();
    }
  });

  it("anonymous remotes send unsigned requests, and 404 is a miss", async () => {
    const http = await fixedServer(404);
    try {
      const remote = openRemote(`s3://castle/x?endpoint=${http.endpoint}`, { env: { CASTLE_S3_ANONYMOUS: "1" } });
      expect(await remote.lookup(keyOf("x"))).toBeUndefined();
      expect(http.seen[0]?.authorization).toBeUndefined();
      const signed = openRemote(`s3://castle/x?endpoint=${http.endpoint}`, { credentials: S3RVER_CREDENTIALS });
      expect(await signed.lookup(keyOf("y"))).toBeUndefined();
      expect(http.seen[1]?.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=S3RVER\//);
      await remote.close();
      await signed.close();
    } finally {
      await http.close();
    }
  });

  it("an anonymous read of s3rver works end to end", async () => {
    const ci = newStore();
    const record = await commitLayer(ci, "public");
    const writer = openRemote(`s3://castle/public?endpoint=${server.endpoint}`, { credentials: S3RVER_CREDENTIALS });
    await writer.push(record, ci);
    const reader = openRemote(`s3://castle/public?endpoint=${server.endpoint}&anonymous=1`);
    expect(await reader.pull(record.key, newStore())).toMatchObject({ digest: record.digest });
    await writer.close();
    await reader.close();
  });
});

describe("isNotFound", () => {
  it("recognises S3's not-found answers and nothing else", () => {
    expect(isNotFound({ name: "NoSuchKey" })).toBe(true);
    expect(isNotFound({ name: "NotFound", $metadata: { httpStatusCode: 404 } })).toBe(true);
    expect(isNotFound({ name: "Unknown", $metadata: { httpStatusCode: 404 } })).toBe(true);
    expect(isNotFound({ name: "NoSuchBucket", $metadata: { httpStatusCode: 404 } })).toBe(false);
    expect(isNotFound({ name: "AccessDenied", $metadata: { httpStatusCode: 403 } })).toBe(false);
    expect(isNotFound(new Error("ECONNREFUSED"))).toBe(false);
    expect(isNotFound(undefined)).toBe(false);
  });
});
