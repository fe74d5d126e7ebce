// Owns the servers the remote benchmarks run against, each in a child process of its own (as a
// real server would be, so it does not share Castle's event loop): a static web server serving a
// directory, a TCP proxy that limits server → client traffic to a given rate (a stand-in for a
// network link), or any server given as code. Each prints its port on stdout once listening.

import { type ChildProcess, spawn } from "node:child_process";

export interface ChildServer {
  port: number;
  child: ChildProcess;
  stop(): void;
}

/** Runs code (which prints its port once listening) in a child Node; cwd resolves its require()s. */
export async function startChild(code: string, cwd?: string): Promise<ChildServer> {
  const child = spawn(process.execPath, ["-e", code], { stdio: ["ignore", "pipe", "inherit"], ...(cwd ? { cwd } : {}) });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout?.once("data", (line: Buffer) => resolve(Number(line.toString().trim())));
    child.once("exit", (status) => reject(new Error(`server exited with ${status}`)));
  });
  return { port, child, stop: () => child.kill() };
}

/** A static web server for dir on 127.0.0.1 (GET, HEAD, 404), like any server of an exported cache. */
export function startWebServer(dir: string): Promise<ChildServer> {
  return startChild(`const http = require("node:http"), fs = require("node:fs"), path = require("node:path");
const root = ${JSON.stringify(dir)};
http.createServer((req, res) => {
  const file = path.join(root, path.normalize(decodeURIComponent(new URL(req.url, "http://x").pathname)).replace(/^(\\.\\.(\\/|$))+/, ""));
  fs.stat(file, (error, stat) => {
    if (error || !stat.isFile()) return res.writeHead(404).end();
    res.writeHead(200, { "content-length": stat.size });
    if (req.method === "HEAD") return res.end();
    fs.createReadStream(file, { highWaterMark: 1 << 20 }).pipe(res);
  });
}).listen(0, "127.0.0.1", function () { console.log(this.address().port); });`);
}

/** A proxy to targetPort whose server → client traffic is limited to mbps MB/s in total. */
export function startLinkProxy(targetPort: number, mbps: number): Promise<ChildServer> {
  return startChild(`const net = require("node:net");
const rate = ${mbps} * 1e6 / 1000; // bytes per ms
let tokens = 0, last = Date.now();
net.createServer((client) => {
  const up = net.connect(${targetPort}, "127.0.0.1");
  client.pipe(up);
  up.on("data", (chunk) => {
    const now = Date.now();
    tokens = Math.min(tokens + (now - last) * rate, 1 << 20);
    last = now;
    tokens -= chunk.length;
    if (!client.write(chunk) || tokens < 0) {
      up.pause();
      setTimeout(() => up.resume(), tokens < 0 ? Math.ceil(-tokens / rate) : 1);
    }
  });
  up.on("end", () => client.end());
  for (const s of [client, up]) s.on("error", () => { client.destroy(); up.destroy(); });
  client.on("close", () => up.destroy());
}).listen(0, "127.0.0.1", function () { console.log(this.address().port); });`);
}
