// Tests for the remote protocol itself (CacheRemote), over the directory backend so that only the
// protocol is at stake: stated unpacked sizes that match what unpack counts, signed round trips,
// the consistent lie (another layer's manifest and blob planted under a real key) refused once
// keys are trusted, decompression bombs stopped at the stated size, a stated size larger than
// the free space refused before any download, old unsigned manifests still readable (and upgraded
// by a signing push without re-uploading), cancellation reported as such. Nothing partial is ever
// left in the store.

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { type CacheRemote, digestTree, openRemote, walkTree } from "../src/index";
import { generateSigningKey, parsePublicKey, parseSigningKey } from "../src/remote/signing";
import type { RemoteManifest } from "../src/types";
import { commitLayer, keyOf, newStore, stagingLeft } from "./helpers/stores";
import { tempDir, writeRandomFile } from "./helpers/trees";

const ci = generateSigningKey("ci-1");
const signingKey = parseSigningKey(ci.secret);
const trusted = parsePublicKey(ci.publicLine);

function directory(): string {
  return tempDir("castle-remote-dir-");
}

function remoteAt(dir: string, options: Parameters<typeof openRemote>[1] = {}): CacheRemote {
  return openRemote(pathToFileURL(dir).href, { negativeTtlMs: 0, ...options });
}

function readManifest(dir: string, key: string): RemoteManifest {
  return JSON.parse(readFileSync(join(dir, "keys", key), "utf8")) as RemoteManifest;
}

function writeManifest(dir: string, manifest: unknown, key = (manifest as RemoteManifest).key): void {
  writeFileSync(join(dir, "keys", key), JSON.stringify(manifest));
}

describe("CacheRemote round trip", () => {
  it("states exactly what unpack writes, and pulls with those as hard caps", async () => {
    const dir = directory();
    const store = newStore();
    const record = await commitLayer(store, "everything"); // Dirs, files, links, whiteouts, an opaque dir.
    const remote = remoteAt(dir);
    expect(await remote.push(record, store)).toMatchObject({ skipped: false });
    const manifest = readManifest(dir, record.key);
    const entries = walkTree(store.treePath(record.digest));
    const opaque = entries.filter((e) => e.kind === "dir" && e.opaque).length;
    expect(opaque).toBeGreaterThan(0);
    expect(manifest.unpacked).toEqual({
      bytes: entries.reduce((sum, e) => sum + (e.kind === "file" ? e.size : 0), 0),
      entries: entries.length + opaque,
    });
    const laptop = newStore();
    expect(await remote.pull(record.key, laptop)).toMatchObject({ digest: record.digest, origin: "pulled" });
    expect(digestTree(laptop.treePath(record.digest)).digest).toBe(record.digest);
    // One entry or one byte less than stated is refused: the caps are exact, not generous.
    for (const unpacked of [{ ...manifest.unpacked!, entries: manifest.unpacked!.entries - 1 }, { ...manifest.unpacked!, bytes: manifest.unpacked!.bytes - 1 }]) {
      writeManifest(dir, { ...manifest, unpacked });
      const elsewhere = newStore();
      await expect(remote.pull(record.key, elsewhere)).rejects.toMatchObject({ code: "CASTLE_REMOTE_CORRUPT" });
      expect(elsewhere.lookup(record.key)).toBeUndefined();
      expect(stagingLeft(elsewhere)).toEqual([]);
    }
  });

  it("signs with the signing key; an importer trusting it pulls and learns who signed", async () => {
    const dir = directory();
    const store = newStore();
    const record = await commitLayer(store, "signed");
    await remoteAt(dir, { signingKey }).push(record, store);
    expect(readManifest(dir, record.key).signatures).toEqual([expect.stringMatching(/^ci-1:/)]);
    const importer = remoteAt(dir, { trustedKeys: [ci.publicLine] });
    expect((await importer.lookup(record.key))?.trust).toEqual({ kind: "signed", by: "ci-1" });
    expect(await importer.pull(record.key, newStore())).toMatchObject({ digest: record.digest });
    // Without trusted keys the signature is seen but not checked.
    expect((await remoteAt(dir).lookup(record.key))?.trust).toEqual({ kind: "unverified", signers: ["ci-1"] });
  });
});

describe("CacheRemote against a remote that lies", () => {
  it("refuses the consistent lie (another layer planted under a real key) once keys are trusted", async () => {
    const dir = directory();
    const store = newStore();
    const real = await commitLayer(store, "real");
    const planted = await commitLayer(store, "planted", (root) => writeFileSync(join(root, "payload"), "pwned"));
    await remoteAt(dir, { signingKey }).push(real, store);
    await remoteAt(dir, { signingKey }).push(planted, store);
    // Someone with write access copies the planted layer's manifest over the real one's, with the
    // key field edited to match: every digest checks out, the content is not what was built.
    const lie = { ...readManifest(dir, planted.key), key: real.key };
    writeManifest(dir, lie);
    const laptop = newStore();
    // Without trusted keys, nothing can tell (the point)...
    expect(await remoteAt(dir).pull(real.key, laptop)).toMatchObject({ digest: planted.digest });
    // ...with them, the signature no longer matches what it covers.
    const careful = newStore();
    const importer = remoteAt(dir, { trustedKeys: [trusted] });
    await expect(importer.lookup(real.key)).rejects.toMatchObject({ code: "CASTLE_REMOTE_UNTRUSTED", message: expect.stringMatching(/does not match its contents/) });
    await expect(importer.pull(real.key, careful)).rejects.toMatchObject({ code: "CASTLE_REMOTE_UNTRUSTED" });
    expect(careful.lookup(real.key)).toBeUndefined();
    expect(stagingLeft(careful)).toEqual([]);
    // A manifest copied verbatim (its own key inside) is refused by anyone: it is for another key.
    writeManifest(dir, readManifest(dir, planted.key), real.key);
    await expect(remoteAt(dir).lookup(real.key)).rejects.toMatchObject({ code: "CASTLE_REMOTE_CORRUPT" });
  });

  it("refuses unsigned, wrongly signed and truncated signatures when keys are trusted", async () => {
    const dir = directory();
    const store = newStore();
    const record = await commitLayer(store, "victim");
    await remoteAt(dir, { signingKey }).push(record, store);
    const good = readManifest(dir, record.key);
    // Another key with the same name signs the same manifest elsewhere.
    const elsewhere = directory();
    await remoteAt(elsewhere, { signingKey: parseSigningKey(generateSigningKey("ci-1").secret) }).push(record, store);
    const cases: Array<[string, unknown]> = [
      ["unsigned", { ...good, signatures: [] }],
      ["wrong key", { ...good, signatures: readManifest(elsewhere, record.key).signatures }],
      ["truncated", { ...good, signatures: [good.signatures[0]!.slice(0, -10)] }],
    ];
    for (const [what, manifest] of cases) {
      writeManifest(dir, manifest);
      await expect(remoteAt(dir, { trustedKeys: [trusted] }).lookup(record.key), what).rejects.toMatchObject({ code: "CASTLE_REMOTE_UNTRUSTED" });
    }
  });

  it("stops a decompression bomb at its stated size, keeping nothing", async () => {
    const dir = directory();
    const store = newStore();
    // 256 MiB of zeros packs to a few hundred kB.
    const record = await commitLayer(store, "bomb", (root) => writeFileSync(join(root, "zeros"), Buffer.alloc(256 << 20)));
    await remoteAt(dir).push(record, store);
    const manifest = readManifest(dir, record.key);
    expect(manifest.size).toBeLessThan(1 << 20);
    writeManifest(dir, { ...manifest, unpacked: { bytes: 1 << 20, entries: manifest.unpacked!.entries } });
    const laptop = newStore();
    await expect(remoteAt(dir).pull(record.key, laptop)).rejects.toMatchObject({
      code: "CASTLE_REMOTE_CORRUPT", message: expect.stringMatching(/past 1048576 bytes/),
    });
    expect(stagingLeft(laptop)).toEqual([]);
    expect(laptop.hasTree(record.digest)).toBe(false);
  });

  it("refuses up front a layer whose stated size exceeds the free space", async () => {
    const dir = directory();
    const store = newStore();
    const record = await commitLayer(store, "huge");
    await remoteAt(dir).push(record, store);
    writeManifest(dir, { ...readManifest(dir, record.key), unpacked: { bytes: 2 ** 52, entries: 1 } });
    const laptop = newStore();
    await expect(remoteAt(dir).pull(record.key, laptop)).rejects.toMatchObject({ code: "CASTLE_CACHE_NO_SPACE", message: expect.stringMatching(/free/) });
    expect(stagingLeft(laptop)).toEqual([]);
  });
});

describe("CacheRemote with manifests from before signing", () => {
  it("reads them when no keys are trusted, refuses them when some are, and a signing push upgrades them in place", async () => {
    const dir = directory();
    const store = newStore();
    const record = await commitLayer(store, "legacy");
    await remoteAt(dir).push(record, store);
    const { unpacked: _, signatures: __, ...legacy } = readManifest(dir, record.key);
    writeManifest(dir, legacy);
    expect(await remoteAt(dir).pull(record.key, newStore())).toMatchObject({ digest: record.digest });
    await expect(remoteAt(dir, { trustedKeys: [trusted] }).lookup(record.key)).rejects.toMatchObject({ code: "CASTLE_REMOTE_UNTRUSTED" });
    // The blob is there and checks out: only the manifest is rewritten, stated and signed.
    expect(await remoteAt(dir, { signingKey }).push(record, store)).toEqual({ uploadedBytes: 0, skipped: false });
    expect(readManifest(dir, record.key)).toMatchObject({ blob: legacy.blob, unpacked: { bytes: expect.any(Number) }, signatures: [expect.stringMatching(/^ci-1:/)] });
    expect(await remoteAt(dir, { trustedKeys: [trusted] }).pull(record.key, newStore())).toMatchObject({ digest: record.digest });
    expect(await remoteAt(dir, { signingKey }).push(record, store)).toEqual({ uploadedBytes: 0, skipped: true });
  });
});

describe("CacheRemote cancelled", () => {
  it("reports a cancelled pull as CASTLE_CANCELLED, never a bad copy, and keeps nothing", async () => {
    const dir = directory();
    const store = newStore();
    const record = await commitLayer(store, "big", (root) => writeRandomFile(join(root, "random"), 24 << 20));
    await remoteAt(dir).push(record, store);
    const laptop = newStore();
    const controller = new AbortController();
    const pulling = remoteAt(dir).pull(record.key, laptop, {
      signal: controller.signal,
      onProgress: (p) => {
        if (p.bytesDone > 1 << 20) controller.abort("SIGTERM");
      },
    });
    await expect(pulling).rejects.toMatchObject({ code: "CASTLE_CANCELLED" });
    expect(laptop.lookup(record.key)).toBeUndefined();
    expect(stagingLeft(laptop)).toEqual([]);
    expect(keyOf("big")).toBe(record.key);
  });
});
