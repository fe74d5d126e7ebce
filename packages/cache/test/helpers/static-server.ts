// Test helper: a static HTTP server on 127.0.0.1 serving a directory, as any web server would
// serve an exported cache (GET and HEAD, 404 for what is missing, Content-Length), which can also
// misbehave on request: trickle bodies (a few bytes now and then, keeping idle timeouts happy),
// answer with a status, or redirect to itself under another path.

import { createReadStream, statSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join, normalize } from "node:path";

export type StaticMode =
  | { kind: "serve" }
  | { kind: "trickle"; bytes: number; everyMs: number; match?: RegExp }
  | { kind: "status"; status: number; match?: RegExp }
  /** Answers /moved/<path> with a redirect to /<path> on this server. */
  | { kind: "redirect" };

export interface StaticServer {
  readonly url: string;
  readonly port: number;
  mode: StaticMode;
  /** Paths requested, in order. */
  readonly requests: string[];
  close(): Promise<void>;
}

export async function startStaticServer(root: string, mode: StaticMode = { kind: "serve" }): Promise<StaticServer> {
  const requests: string[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    requests.push(`${req.method} ${path}`);
    const current = state.mode;
    if (current.kind === "redirect" && path.startsWith("/moved/")) {
      res.writeHead(302, { location: path.slice("/moved".length) }).end();
      return;
    }
    if (current.kind === "status" && (!current.match || current.match.test(path))) {
      res.writeHead(current.status).end(`status ${current.status}\n`);
      return;
    }
    const file = join(root, normalize(path).replace(/^(\.\.(\/|$))+/, ""));
    let size: number;
    try {
      const stat = statSync(file);
      if (!stat.isFile()) throw new Error("not a file");
      size = stat.size;
    } catch {
      res.writeHead(404).end("not found\n");
      return;
    }
    res.writeHead(200, { "content-length": size, "content-type": "application/octet-stream" });
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    if (current.kind === "trickle" && (!current.match || current.match.test(path))) {
      const stream = createReadStream(file, { highWaterMark: current.bytes });
      stream.pause();
      const timer = setInterval(() => {
        const chunk = stream.read(current.bytes) as Buffer | null;
        if (chunk) res.write(chunk);
        else if (stream.readableEnded) finish();
      }, current.everyMs);
      const finish = () => {
        clearInterval(timer);
        timers.delete(timer);
        res.end();
      };
      timers.add(timer);
      stream.on("end", finish);
      res.on("close", () => {
        clearInterval(timer);
        timers.delete(timer);
        stream.destroy();
      });
      return;
    }
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const state: StaticServer = {
    url: `http://127.0.0.1:${port}`,
    port,
    mode,
    requests,
    async close() {
      for (const timer of timers) clearInterval(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return state;
}
