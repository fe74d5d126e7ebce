// Tests for the HTTP client under the HTTP and OCI backends, against real servers on loopback:
// redirects followed for reads, the Authorization header never carried to another origin, bodies
// from files with upload progress, a server that accepts and never answers timed out, and a
// response larger than asked for refused.

import { writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HttpClient, isLoopback, readText } from "../src/remote/http-client";
import { tempDir } from "./helpers/trees";

const servers: http.Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function serve(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("HttpClient", () => {
  it("follows a redirect to another origin without the Authorization header", async () => {
    const seen: Array<string | undefined> = [];
    const other = await serve((req, res) => {
      seen.push(req.headers.authorization);
      res.end("blob");
    });
    const first = await serve((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(307, { location: `${other}/storage/blob` }).end();
    });
    const client = new HttpClient();
    const response = await client.request({ method: "GET", url: new URL(`${first}/v2/x/blobs/y`), headers: { authorization: "Bearer secret" } });
    expect(response.status).toBe(200);
    expect(await readText(response, 100)).toBe("blob");
    expect(response.url.href).toBe(`${other}/storage/blob`);
    expect(seen).toEqual(["Bearer secret", undefined]);
    client.close();
  });

  it("sends a file with progress, and does not follow redirects for writes", async () => {
    let received = 0;
    const url = await serve((req, res) => {
      req.on("data", (chunk: Buffer) => (received += chunk.length));
      req.on("end", () => res.writeHead(302, { location: "/elsewhere" }).end());
    });
    const file = join(tempDir(), "body");
    writeFileSync(file, Buffer.alloc(3 << 20, 1));
    const progress: number[] = [];
    const client = new HttpClient();
    const response = await client.request({ method: "PUT", url: new URL(`${url}/upload`), body: { file, size: 3 << 20, onProgress: (n) => progress.push(n) } });
    expect(response.status).toBe(302);
    expect(received).toBe(3 << 20);
    expect(progress.at(-1)).toBe(3 << 20);
    client.close();
  });

  it("times out a server that never answers, and refuses a body larger than asked for", async () => {
    const url = await serve((req, res) => {
      if (req.url === "/big") res.end(Buffer.alloc(10_000));
      // Otherwise: never answer.
    });
    const client = new HttpClient({ idleTimeoutMs: 300 });
    const started = Date.now();
    await expect(client.request({ method: "GET", url: new URL(`${url}/hang`) })).rejects.toMatchObject({ code: "ETIMEDOUT" });
    expect(Date.now() - started).toBeLessThan(3_000);
    const big = await client.request({ method: "GET", url: new URL(`${url}/big`) });
    await expect(readText(big, 1000)).rejects.toMatchObject({ code: "ERR_RESPONSE_TOO_LARGE" });
    client.close();
  });

  it("knows loopback hosts", () => {
    for (const host of ["127.0.0.1", "127.1.2.3", "localhost", "[::1]", "::1"]) expect(isLoopback(host), host).toBe(true);
    for (const host of ["10.0.0.1", "128.0.0.1", "localhost.example"]) expect(isLoopback(host), host).toBe(false);
  });
});
