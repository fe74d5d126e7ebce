// Tests for the read-only HTTP backend against a real static server on loopback serving a
// directory that a CI machine exported to (file://): the same layout read over HTTP, signed
// round trips, misses, redirects, a server that is down, errors and refusals, a server that
// trickles (abandoned within its window), and that it can be neither written nor listed.

import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openRemote } from "../src/index";
import { generateSigningKey, parseSigningKey } from "../src/remote/signing";
import { type StaticServer, startStaticServer } from "./helpers/static-server";
import { commitLayer, keyOf, newStore, stagingLeft } from "./helpers/stores";
import { closedPort } from "./helpers/tcp-proxy";
import { tempDir, writeRandomFile } from "./helpers/trees";
import type { KeyRecord } from "../src/types";

const key = generateSigningKey("ci-1");
let exported: string;
let server: StaticServer;
let records: KeyRecord[];

beforeAll(async () => {
  exported = tempDir("castle-http-export-", "file");
  const ci = newStore("file");
  records = [
    await commitLayer(ci, "small"),
    await commitLayer(ci, "large", (root) => writeRandomFile(`${root}/random`, 2 << 20)),
  ];
  const remote = openRemote(pathToFileURL(exported).href, { signingKey: parseSigningKey(key.secret) });
  for (const record of records) await remote.push(record, ci);
  server = await startStaticServer(exported);
});
afterAll(async () => {
  await server?.close();
});

const http = (path = "", options: Parameters<typeof openRemote>[1] = {}) =>
  openRemote(`${server.url}/${path}`, { negativeTtlMs: 0, trustedKeys: [key.publicLine], ...options });

describe("HttpBackend", () => {
  it("pulls what a directory export holds, signed, over plain HTTP", async () => {
    server.mode = { kind: "serve" };
    const laptop = newStore();
    const remote = http();
    expect(remote.writable).toBe(false);
    for (const record of records) {
      expect((await remote.lookup(record.key))?.trust).toEqual({ kind: "signed", by: "ci-1" });
      expect(await remote.pull(record.key, laptop)).toMatchObject({ digest: record.digest, origin: "pulled" });
    }
    expect(await remote.lookup(keyOf("absent"))).toBeUndefined();
    expect(server.requests).toContain(`GET /keys/${keyOf("absent")}`);
    await remote.close();
  });

  it("follows redirects", async () => {
    server.mode = { kind: "redirect" };
    const remote = http("moved");
    expect(await remote.pull(records[0]!.key, newStore())).toMatchObject({ digest: records[0]!.digest });
    await remote.close();
  });

  it("cannot be written to or listed", async () => {
    server.mode = { kind: "serve" };
    const remote = http();
    const ci = newStore();
    const record = await commitLayer(ci, "new");
    await expect(remote.push(record, ci)).rejects.toMatchObject({ code: "CASTLE_REMOTE_UNSUPPORTED", message: expect.stringMatching(/read-only/) });
    const listing = (async () => {
      for await (const _ of remote.list()) break;
    })();
    await expect(listing).rejects.toMatchObject({ code: "CASTLE_REMOTE_UNSUPPORTED", message: expect.stringMatching(/cannot be listed/) });
  });

  it("maps refusals, errors and a dead server to remote faults", async () => {
    for (const [status, code] of [[403, "CASTLE_REMOTE_AUTH"], [401, "CASTLE_REMOTE_AUTH"], [500, "CASTLE_REMOTE_ERROR"], [503, "CASTLE_REMOTE_ERROR"]] as const) {
      server.mode = { kind: "status", status };
      await expect(http().lookup(records[0]!.key), String(status)).rejects.toMatchObject({ code, message: expect.stringContaining(`HTTP ${status}`) });
    }
    server.mode = { kind: "serve" };
    const dead = openRemote(`http://127.0.0.1:${await closedPort()}/cache`, { negativeTtlMs: 0 });
    await expect(dead.lookup(records[0]!.key)).rejects.toMatchObject({ code: "CASTLE_REMOTE_UNREACHABLE" });
  });

  it("gives up on a server that trickles, within its window, keeping nothing", async () => {
    // 64 bytes every 100 ms: never silent long enough for an idle timeout.
    server.mode = { kind: "trickle", bytes: 64, everyMs: 100, match: /\/blobs\// };
    const laptop = newStore();
    const remote = http("", { transfer: { minBytesPerSecond: 100_000, windowMs: 1_000 } });
    const started = Date.now();
    await expect(remote.pull(records[1]!.key, laptop)).rejects.toMatchObject({
      code: "CASTLE_REMOTE_TIMEOUT", message: expect.stringMatching(/below the floor of 100\.0 kB\/s; abandoned/),
    });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(laptop.lookup(records[1]!.key)).toBeUndefined();
    expect(stagingLeft(laptop)).toEqual([]);
    server.mode = { kind: "serve" };
    await remote.close();
  });

  it("refuses URLs it cannot serve", () => {
    for (const url of ["https://user:pw@host/x", "https://host/x?y=1", "https://host/x#fragment"]) {
      expect(() => openRemote(url), url).toThrow(expect.objectContaining({ code: "CASTLE_REMOTE_URL" }));
    }
  });
});
