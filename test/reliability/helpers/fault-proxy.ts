// Test helper: an HTTP proxy on 127.0.0.1 in front of a real server (s3rver), that injects
// faults per request: answer with an S3-style error (500, 503, 403…), hold a request and never
// answer, or cut the connection after part of an upload's body has been forwarded (so the server
// sees a partial upload). Requests are forwarded byte for byte, Host header included, so
// signatures still check out. Every request is logged with what was done to it.

import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** Which requests a fault applies to (all when omitted). */
export interface Match {
  method?: string;
  /** Tested against the request path (e.g. /castle/prefix/blobs/sha256/…). */
  path?: RegExp;
}

export type Fault =
  | { kind: "pass" }
  | { kind: "status"; status: number; code: string; match?: Match }
  | { kind: "hang"; match?: Match }
  | { kind: "cut-upload"; afterBytes: number; match?: Match };

export interface LoggedRequest {
  method: string;
  path: string;
  fault: Fault["kind"];
}

export interface FaultProxy {
  readonly endpoint: string;
  fault: Fault;
  readonly log: LoggedRequest[];
  close(): Promise<void>;
}

function matches(match: Match | undefined, req: IncomingMessage): boolean {
  if (!match) return true;
  if (match.method && match.method !== req.method) return false;
  if (match.path && !match.path.test(req.url ?? "")) return false;
  return true;
}

export async function startFaultProxy(targetPort: number, fault: Fault = { kind: "pass" }): Promise<FaultProxy> {
  const sockets = new Set<Socket>();
  const proxy: FaultProxy = {
    endpoint: "",
    fault,
    log: [],
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const forward = (req: IncomingMessage, res: ServerResponse, cutAfter?: number) => {
    const upstream = httpRequest({ host: "127.0.0.1", port: targetPort, method: req.method, path: req.url, headers: req.headers });
    upstream.on("response", (response) => {
      res.writeHead(response.statusCode ?? 502, response.headers);
      response.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    if (cutAfter === undefined) {
      req.pipe(upstream);
      return;
    }
    let sent = 0;
    req.on("data", (chunk: Buffer) => {
      if (sent >= cutAfter) return;
      const take = Math.min(chunk.length, cutAfter - sent);
      sent += take;
      upstream.write(chunk.subarray(0, take));
      if (sent >= cutAfter) {
        // Let the partial body reach the server, then drop both connections mid-request.
        setTimeout(() => {
          upstream.destroy();
          req.socket.destroy();
        }, 50);
      }
    });
    req.on("end", () => {
      if (sent < cutAfter) upstream.end();
    });
  };

  const server = createServer((req, res) => {
    const current = proxy.fault;
    const applies = current.kind !== "pass" && matches(current.match, req);
    proxy.log.push({ method: req.method ?? "", path: req.url ?? "", fault: applies ? current.kind : "pass" });
    if (!applies) return forward(req, res);
    switch (current.kind) {
      case "status":
        req.resume();
        req.on("end", () => {
          const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${current.code}</Code><Message>injected by the test proxy</Message></Error>`;
          res.writeHead(current.status, { "content-type": "application/xml", "content-length": Buffer.byteLength(body) });
          res.end(req.method === "HEAD" ? undefined : body);
        });
        return;
      case "hang":
        req.resume(); // Read everything, answer nothing.
        return;
      case "cut-upload":
        if (req.method === "PUT" || req.method === "POST") return forward(req, res, current.afterBytes);
        return forward(req, res);
      default:
        return forward(req, res);
    }
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  Object.assign(proxy, { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
  return proxy;
}
