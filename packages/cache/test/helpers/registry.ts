// Test helper: a real OCI registry on loopback — Debian's docker-registry (the CNCF distribution
// registry 2.8) started as a child with a config file of our own (filesystem storage in a temp
// dir, 127.0.0.1 and a free port; never the packaged config) — with no auth, htpasswd (basic)
// auth, or token auth served by a small token service in this process (ES256 JWTs, the
// docker/distribution token flow). Plus a docker config.json that holds credentials for it.

import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash, createPrivateKey, createPublicKey, sign } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { removeTree } from "../../src/index";
import { closedPort } from "./tcp-proxy";

export type RegistryAuthMode = { kind: "none" } | { kind: "htpasswd"; user: string; password: string } | { kind: "token"; user: string; password: string };

export interface Registry {
  /** host:port, for oci://<host>/<repo> URLs. */
  readonly host: string;
  readonly port: number;
  /** Token requests the token service answered (token mode). */
  readonly tokenRequests: string[];
  stop(): Promise<void>;
  start(): Promise<void>;
  dispose(): Promise<void>;
}

/** Why a registry cannot be started here, or undefined. */
export function registryMissing(mode: RegistryAuthMode["kind"] = "none"): string | undefined {
  if (spawnSync("docker-registry", ["--version"]).status !== 0) return "docker-registry is not installed (apt-get install docker-registry)";
  if (mode === "htpasswd" && spawnSync("htpasswd", ["-h"]).error) return "htpasswd is not installed (apt-get install apache2-utils)";
  if (mode === "token" && spawnSync("openssl", ["version"]).status !== 0) return "openssl is not installed";
  return undefined;
}

/** Why skopeo cannot be used here, or undefined. */
export function skopeoMissing(): string | undefined {
  return spawnSync("skopeo", ["--version"]).status === 0 ? undefined : "skopeo is not installed (apt-get install skopeo)";
}

export async function startRegistry(auth: RegistryAuthMode = { kind: "none" }): Promise<Registry> {
  const dir = mkdtempSync(join(tmpdir(), "castle-registry-"));
  mkdirSync(join(dir, "data"));
  const port = await closedPort();
  const tokenRequests: string[] = [];
  let tokenServer: http.Server | undefined;
  let authYaml = "";
  if (auth.kind === "htpasswd") {
    execFileSync("htpasswd", ["-B", "-b", "-c", join(dir, "htpasswd"), auth.user, auth.password], { stdio: "pipe" });
    authYaml = `auth:\n  htpasswd:\n    realm: castle-test\n    path: ${join(dir, "htpasswd")}\n`;
  } else if (auth.kind === "token") {
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=castle-test-token",
      "-days", "2", "-keyout", join(dir, "token.key"), "-out", join(dir, "token.crt"),
    ], { stdio: "pipe" });
    tokenServer = await startTokenService(readFileSync(join(dir, "token.key"), "utf8"), auth, tokenRequests);
    const tokenPort = (tokenServer.address() as AddressInfo).port;
    authYaml = `auth:\n  token:\n    realm: http://127.0.0.1:${tokenPort}/token\n    service: castle-test\n    issuer: castle-test-issuer\n    rootcertbundle: ${join(dir, "token.crt")}\n`;
  }
  writeFileSync(join(dir, "config.yml"), `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${join(dir, "data")}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${port}
${authYaml}`);
  let child: ChildProcess | undefined;
  const start = async () => {
    const started = spawn("docker-registry", ["serve", join(dir, "config.yml")], { stdio: ["ignore", "ignore", "pipe"] });
    child = started;
    let stderr = "";
    started.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (started.exitCode !== null) throw new Error(`docker-registry exited with ${started.exitCode}: ${stderr}`);
      if (await answers(port)) return;
      if (Date.now() > deadline) throw new Error(`docker-registry did not start: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const stop = async () => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill("SIGKILL");
    await exited;
  };
  await start();
  return {
    host: `127.0.0.1:${port}`,
    port,
    tokenRequests,
    start,
    stop,
    async dispose() {
      await stop();
      await new Promise<void>((resolve) => (tokenServer ? tokenServer.close(() => resolve()) : resolve()));
      removeTree(dir);
    },
  };
}

/** A docker config directory whose config.json holds these credentials for host. */
export function dockerConfig(host: string, user: string, password: string): string {
  const dir = mkdtempSync(join(tmpdir(), "castle-docker-config-"));
  writeFileSync(join(dir, "config.json"), JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${user}:${password}`).toString("base64") } } }));
  return dir;
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/v2/" }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on("error", () => resolve(false));
  });
}

/**
 * The token service of the docker token flow: checks the client's basic credentials and answers
 * with a JWT the registry verifies against the certificate (kid: the key's libtrust id).
 */
async function startTokenService(keyPem: string, auth: { user: string; password: string }, requests: string[]): Promise<http.Server> {
  const key = createPrivateKey(keyPem);
  const der = createPublicKey(key).export({ format: "der", type: "spki" });
  const kid = libtrustKeyId(der);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://token");
    requests.push(url.search);
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    const [user, password] = basic ? Buffer.from(basic, "base64").toString().split(":") : [];
    if (user !== auth.user || password !== auth.password) {
      res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ details: "bad credentials" }));
      return;
    }
    const access = url.searchParams.getAll("scope").map((scope) => {
      const [type, name, actions] = scope.split(":");
      return { type, name, actions: (actions ?? "").split(",") };
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: "JWT", alg: "ES256", kid };
    const claims = { iss: "castle-test-issuer", sub: user, aud: url.searchParams.get("service"), exp: now + 300, nbf: now - 10, iat: now, jti: String(Math.random()), access };
    const body = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign("sha256", Buffer.from(body), { key, dsaEncoding: "ieee-p1363" }).toString("base64url");
    const token = `${body}.${signature}`;
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token, access_token: token, expires_in: 300 }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

/** docker/libtrust's key id: base32 of the first 30 bytes of sha256(DER SubjectPublicKeyInfo), in groups of 4. */
function libtrustKeyId(spki: Buffer): string {
  const bytes = createHash("sha256").update(spki).digest().subarray(0, 30);
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return (out.match(/.{4}/g) ?? []).join(":");
}

function b64url(text: string): string {
  return Buffer.from(text).toString("base64url");
}
