// Test helper: a real S3 server (s3rver) on 127.0.0.1 with a random port and a temp directory,
// which can be stopped abruptly (every connection cut) and started again on the same port and
// data; plus a plain SDK client for tests that tamper with the bucket directly.

import { mkdtempSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { S3Client } from "@aws-sdk/client-s3";
import S3rver from "s3rver";
import { removeTree } from "../../src/index";

/** s3rver's built-in key pair: it checks request signatures against it. */
export const S3RVER_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

export interface S3Server {
  readonly endpoint: string;
  readonly port: number;
  readonly bucket: string;
  /** Stops at once, cutting open connections (as a crash would). */
  stop(): Promise<void>;
  /** Starts again on the same port with the same data. */
  start(): Promise<void>;
  /** Stops and deletes the data. */
  dispose(): Promise<void>;
  /** A plain SDK client for the bucket, for setting up and tampering. */
  client(): S3Client;
}

export async function startS3Server(bucket = "castle"): Promise<S3Server> {
  const directory = mkdtempSync(join(tmpdir(), "castle-s3rver-"));
  let port = 0;
  let server: S3rver | undefined;
  const clients: S3Client[] = [];
  const start = async () => {
    server = new S3rver({ address: "127.0.0.1", port, silent: true, directory, configureBuckets: [{ name: bucket, configs: [] }] });
    const address: AddressInfo = await server.run();
    port = address.port;
  };
  const stop = async () => {
    const running = server;
    server = undefined;
    if (!running) return;
    const closing = running.close().catch(() => {});
    running.httpServer?.closeAllConnections();
    await closing;
  };
  await start();
  return {
    get endpoint() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    bucket,
    stop,
    start,
    async dispose() {
      for (const c of clients) c.destroy();
      await stop();
      removeTree(directory);
    },
    client() {
      const c = new S3Client({
        region: "us-east-1",
        endpoint: `http://127.0.0.1:${port}`,
        forcePathStyle: true,
        credentials: S3RVER_CREDENTIALS,
        requestChecksumCalculation: "WHEN_REQUIRED",
        responseChecksumValidation: "WHEN_REQUIRED",
      });
      clients.push(c);
      return c;
    },
  };
}
