// Owns plain HTTP(S) requests for the HTTP and OCI backends, on Node's own http/https (keep-alive
// agents, no dependency): a connect timeout, an idle timeout while waiting or streaming, the
// caller's abort signal, bodies from strings or files with upload progress, and redirects for
// reads (registries send blob downloads to object storage) — the Authorization header is never
// carried to another origin. Network failures are thrown as Node raised them; statuses are the
// caller's to interpret.

import { createReadStream } from "node:fs";
import http, { type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import https from "node:https";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";

export interface HttpOptions {
  /** Time to establish a connection, ms. Default 5000. */
  connectTimeoutMs?: number;
  /** Longest silence while waiting for or reading a response, ms. Default 30000. */
  idleTimeoutMs?: number;
}

export type HttpBody = string | Buffer | { file: string; size: number; onProgress?: (bytesDone: number) => void };

export interface HttpRequest {
  method: "GET" | "HEAD" | "PUT" | "POST" | "PATCH" | "DELETE";
  url: URL;
  headers?: Record<string, string>;
  body?: HttpBody;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
  /** The URL that answered (after redirects). */
  url: URL;
}

const MAX_REDIRECTS = 5;

export class HttpClient {
  private readonly agents = {
    "http:": new http.Agent({ keepAlive: true, maxSockets: 64 }),
    "https:": new https.Agent({ keepAlive: true, maxSockets: 64 }),
  };
  private readonly connectTimeoutMs: number;
  private readonly idleTimeoutMs: number;

  constructor(options: HttpOptions = {}) {
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
  }

  /** Sends a request; reads (GET, HEAD) follow redirects. The caller consumes or discards body. */
  async request(request: HttpRequest): Promise<HttpResponse> {
    let url = request.url;
    let headers = { ...request.headers };
    for (let hop = 0; ; hop++) {
      const response = await this.once({ ...request, url, headers });
      const location = response.headers.location;
      const redirect = [301, 302, 303, 307, 308].includes(response.status) && location !== undefined;
      if (!redirect || (request.method !== "GET" && request.method !== "HEAD")) return response;
      discard(response);
      if (hop === MAX_REDIRECTS) throw Object.assign(new Error(`more than ${MAX_REDIRECTS} redirects from ${request.url.href}`), { code: "ERR_TOO_MANY_REDIRECTS" });
      const next = new URL(location, url);
      if (next.origin !== url.origin) headers = withoutAuthorization(headers);
      url = next;
    }
  }

  private once(request: HttpRequest): Promise<HttpResponse> {
    const { url } = request;
    const lib = url.protocol === "https:" ? https : http;
    const agent = this.agents[url.protocol as "http:" | "https:"];
    if (!agent) return Promise.reject(Object.assign(new Error(`unsupported protocol ${url.protocol}`), { code: "ERR_INVALID_PROTOCOL" }));
    const body = request.body;
    const headers: Record<string, string> = { ...request.headers };
    if (typeof body === "string" || Buffer.isBuffer(body)) headers["content-length"] = String(Buffer.byteLength(body));
    else if (body) headers["content-length"] = String(body.size);
    return new Promise<HttpResponse>((resolve, reject) => {
      const req = lib.request(url, { method: request.method, headers, agent, signal: request.signal });
      let connectTimer: NodeJS.Timeout | undefined;
      req.on("socket", (socket) => {
        if (!socket.connecting) return;
        connectTimer = setTimeout(() => req.destroy(timeout(`no connection to ${url.host} within ${this.connectTimeoutMs} ms`)), this.connectTimeoutMs);
        socket.once(url.protocol === "https:" ? "secureConnect" : "connect", () => clearTimeout(connectTimer));
      });
      req.setTimeout(this.idleTimeoutMs, () => req.destroy(timeout(`${url.host} sent nothing for ${this.idleTimeoutMs} ms`)));
      req.once("error", (error) => {
        clearTimeout(connectTimer);
        reject(error);
      });
      req.once("response", (res) => {
        clearTimeout(connectTimer);
        // The idle timeout keeps covering the body: reading it waits on the same socket.
        res.once("error", () => {});
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url });
      });
      if (body === undefined) req.end();
      else if (typeof body === "string" || Buffer.isBuffer(body)) req.end(body);
      else {
        let done = 0;
        const counted = new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            done += chunk.length;
            body.onProgress?.(done);
            callback(null, chunk);
          },
        });
        pipeline(createReadStream(body.file, { highWaterMark: 1 << 20 }), counted, req).catch((error: unknown) => req.destroy(error as Error));
      }
    });
  }

  /** Stops every idle connection. */
  close(): void {
    for (const agent of Object.values(this.agents)) agent.destroy();
  }
}

/** A response body as text, at most limit bytes (more is an error: it is not what was asked for). */
export async function readText(response: HttpResponse, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      response.body.destroy();
      throw Object.assign(new Error(`the response from ${response.url.host} is larger than ${limit} bytes`), { code: "ERR_RESPONSE_TOO_LARGE" });
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Throws away a body we do not need, so its connection can be reused. */
export function discard(response: HttpResponse): void {
  response.body.resume();
}

/** True for loopback hosts, where plain HTTP is allowed without being asked for. */
export function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function timeout(message: string): Error {
  return Object.assign(new Error(message), { code: "ETIMEDOUT" });
}

function withoutAuthorization(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => name.toLowerCase() !== "authorization"));
}
