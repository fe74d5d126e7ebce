// Tests for the OCI registry backend against a real registry on loopback (Debian's
// docker-registry, the CNCF distribution registry, with a config of our own): signed round trips,
// nothing uploaded twice, what Castle pushed read back by skopeo, listing by tags, basic
// (htpasswd) and bearer-token logins from docker's config.json, wrong or missing credentials, a
// registry that is down, and plain HTTP only where allowed. (Uploads cut off: test/reliability.)

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CacheRemote, listRemote, openRemote, removeTree } from "../src/index";
import { HttpClient } from "../src/remote/http-client";
import { OciBackend, tagOf } from "../src/remote/oci-backend";
import { generateSigningKey, parseSigningKey } from "../src/remote/signing";
import { type Registry, dockerConfig, registryMissing, skopeoMissing, startRegistry } from "./helpers/registry";
import { commitLayer, keyOf, newStore, stagingLeft } from "./helpers/stores";
import { closedPort } from "./helpers/tcp-proxy";

const skip = registryMissing();
if (skip) console.warn(`skipping OCI registry tests: ${skip}`);
const key = generateSigningKey("ci-1");
let repos = 0;

function remoteAt(host: string, env: NodeJS.ProcessEnv = { DOCKER_CONFIG: "/nonexistent" }, options: Parameters<typeof openRemote>[1] = {}): CacheRemote {
  return openRemote(`oci://${host}/castle/t${++repos}`, { negativeTtlMs: 0, env, ...options });
}

describe.skipIf(skip)("OciBackend on an open registry", () => {
  let registry: Registry;
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    await registry?.dispose();
  });

  it("round-trips signed layers, uploads nothing twice, and lists them by tag", async () => {
    const ci = newStore();
    const records = [await commitLayer(ci, "base"), await commitLayer(ci, "app")];
    const remote = remoteAt(registry.host, undefined, { signingKey: parseSigningKey(key.secret), trustedKeys: [key.publicLine] });
    for (const record of records) expect(await remote.push(record, ci)).toMatchObject({ skipped: false });
    for (const record of records) expect(await remote.push(record, ci)).toEqual({ uploadedBytes: 0, skipped: true });
    const laptop = newStore();
    for (const record of records) {
      expect((await remote.lookup(record.key))?.trust).toEqual({ kind: "signed", by: "ci-1" });
      expect(await remote.pull(record.key, laptop)).toMatchObject({ digest: record.digest, origin: "pulled" });
    }
    expect(await remote.lookup(keyOf("absent"))).toBeUndefined();
    expect((await listRemote(remote)).map((m) => m.name).sort()).toEqual(["app", "base"]);
    expect(stagingLeft(laptop)).toEqual([]);
    await remote.close();
  });

  it.skipIf(skopeoMissing())("pushes what skopeo reads: an OCI manifest per key whose layer is the blob", async () => {
    const ci = newStore();
    const record = await commitLayer(ci, "readable");
    const remote = remoteAt(registry.host);
    await remote.push(record, ci);
    const manifest = (await remote.lookup(record.key))!;
    const repo = remote.url.slice("oci://".length);
    const ref = `docker://${repo}:${tagOf(record.key)}`;
    const raw = spawnSync("skopeo", ["inspect", "--raw", "--tls-verify=false", ref], { encoding: "utf8" });
    expect(raw.status, raw.stderr).toBe(0);
    const oci = JSON.parse(raw.stdout) as { mediaType: string; layers: Array<{ digest: string; size: number; mediaType: string }>; annotations: Record<string, string> };
    expect(oci.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
    expect(oci.layers).toEqual([{ mediaType: "application/vnd.oci.image.layer.v1.tar+zstd", digest: `sha256:${manifest.blob}`, size: manifest.size }]);
    expect(JSON.parse(oci.annotations["dev.castle.manifest"]!)).toMatchObject({ key: record.key, digest: record.digest });
    const out = mkdtempSync(join(tmpdir(), "castle-skopeo-"));
    try {
      const copy = spawnSync("skopeo", ["copy", "--src-tls-verify=false", ref, `dir:${join(out, "image")}`], { encoding: "utf8" });
      expect(copy.status, copy.stderr).toBe(0);
      const blob = readFileSync(join(out, "image", manifest.blob));
      expect(createHash("sha256").update(blob).digest("hex")).toBe(manifest.blob);
    } finally {
      removeTree(out);
    }
  });

  it("a registry that is down is CASTLE_REMOTE_UNREACHABLE", async () => {
    const down = remoteAt(`127.0.0.1:${await closedPort()}`);
    await expect(down.lookup(keyOf("x"))).rejects.toMatchObject({ code: "CASTLE_REMOTE_UNREACHABLE" });
    const ci = newStore();
    await expect(down.push(await commitLayer(ci, "x"), ci)).rejects.toMatchObject({ code: "CASTLE_REMOTE_UNREACHABLE" });
  });
});

for (const kind of ["htpasswd", "token"] as const) {
  const why = registryMissing(kind);
  if (why) console.warn(`skipping OCI ${kind} login tests: ${why}`);
  describe.skipIf(why)(`OciBackend with ${kind} logins`, () => {
    let registry: Registry;
    beforeAll(async () => {
      registry = await startRegistry({ kind, user: "ci", password: "correct horse" });
    });
    afterAll(async () => {
      await registry?.dispose();
    });

    it("logs in with docker's config.json; wrong or missing credentials are CASTLE_REMOTE_AUTH and publish nothing", async () => {
      const ci = newStore();
      const record = await commitLayer(ci, `login-${kind}`);
      const good = remoteAt(registry.host, { DOCKER_CONFIG: dockerConfig(registry.host, "ci", "correct horse") });
      // Requests refused together before the first login all log in (each retries with the
      // credentials, not just the first to hear the challenge).
      expect(await Promise.all([1, 2, 3, 4, 5].map((i) => good.lookup(keyOf(`parallel-${i}`))))).toEqual([undefined, undefined, undefined, undefined, undefined]);
      expect(await good.push(record, ci)).toMatchObject({ skipped: false });
      expect(await good.pull(record.key, newStore())).toMatchObject({ digest: record.digest });
      if (kind === "token") expect(registry.tokenRequests.some((q) => q.includes("pull%2Cpush"))).toBe(true);

      const wrongEnv = { DOCKER_CONFIG: dockerConfig(registry.host, "ci", "wrong") };
      const wrong = openRemote(good.url, { negativeTtlMs: 0, env: wrongEnv });
      await expect(wrong.lookup(record.key)).rejects.toMatchObject({ code: "CASTLE_REMOTE_AUTH", message: expect.stringMatching(/config\.json/) });
      const other = await commitLayer(ci, `other-${kind}`);
      const wrongPush = remoteAt(registry.host, wrongEnv);
      await expect(wrongPush.push(other, ci)).rejects.toMatchObject({ code: "CASTLE_REMOTE_AUTH" });
      const none = openRemote(good.url, { negativeTtlMs: 0, env: { DOCKER_CONFIG: "/nonexistent" } });
      await expect(none.lookup(record.key)).rejects.toMatchObject({ code: "CASTLE_REMOTE_AUTH" });
      // Nothing reached the repository the refused push aimed at.
      const check = openRemote(wrongPush.url, { negativeTtlMs: 0, env: { DOCKER_CONFIG: dockerConfig(registry.host, "ci", "correct horse") } });
      expect(await listRemote(check)).toEqual([]);
    });
  });
}

describe("OciBackend URLs", () => {
  it("speaks HTTPS except to loopback and registries the user calls insecure", () => {
    const http = new HttpClient();
    expect(new OciBackend("oci://127.0.0.1:5000/team/cache", http).where).toBe("http://127.0.0.1:5000");
    expect(new OciBackend("oci://localhost:5000/team/cache", http).where).toBe("http://localhost:5000");
    expect(new OciBackend("oci://10.1.2.3:5000/team/cache", http).where).toBe("https://10.1.2.3:5000");
    expect(new OciBackend("oci://10.1.2.3:5000/team/cache", http, { insecureRegistries: ["10.1.2.3:5000"] }).where).toBe("http://10.1.2.3:5000");
    http.close();
  });

  it("refuses references that are not host/repository", () => {
    for (const url of ["oci://host", "oci://host/", "oci://host/UPPER", "oci://host/a//b", "oci://host:port/x"]) {
      expect(() => openRemote(url), url).toThrow(expect.objectContaining({ code: "CASTLE_REMOTE_URL" }));
    }
  });
});
