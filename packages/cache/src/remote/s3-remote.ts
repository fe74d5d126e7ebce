// Owns the remote cache protocol on S3. Layout under the URL's prefix:
//   blobs/sha256/<blob digest>   a packed layer (compressed tar), metadata castle-sha256
//   keys/<layer key>             a RemoteManifest (JSON), written only after its blob is verified
// Pull: manifest → stream the blob → verify its sha256 and compute the tree's output digest while
// unpacking into a staging dir → commit with the manifest's output digest (content checked twice). Push: manifest already there
// → skip; else pack, HEAD the blob, upload only when it is not a verified copy, HEAD again to
// verify, then write the manifest last. Any fault is a CastleError CASTLE_REMOTE_*, with nothing
// staged, committed or published left behind.

import { join } from "node:path";
import { CastleError, isCastleError } from "@castle/errors";
import type { Compression } from "../archive/compress";
import { packTreeToFile } from "../archive/pack";
import { unpackTree } from "../archive/unpack";
import type { KeyRecord, LayerKey, PullOptions, PushResult, Remote, RemoteManifest, Store } from "../types";
import { isHex64, parseManifest, serializeManifest } from "./manifest";
import { NegativeCache } from "./negative-cache";
import { S3Access } from "./s3-client";
import { remoteError } from "./s3-errors";
import { type S3Settings, resolveS3Config } from "./s3-url";
import { BlobEtags, SHA256_META, blobMismatch } from "./transfer";

export interface RemoteOptions extends S3Settings {
  /** How long a miss is remembered, ms. Default 60000; 0 disables. */
  negativeTtlMs?: number;
  /** Where misses are also remembered for other processes, e.g. store.dir("remote"). Default: memory only. */
  negativeCacheDir?: string;
  /** Multipart part size, bytes. Default 16 MiB. */
  partSize?: number;
  /** Blobs larger than this are uploaded in parts. Default 64 MiB. */
  multipartThreshold?: number;
  /** Parts uploaded at once per blob. Default 4. */
  uploadQueueSize?: number;
  /** Compression of pushed blobs. Default: zstd when installed, else gzip. */
  compression?: Compression;
  /** Recorded in manifests. Default "dev". */
  castleVersion?: string;
}

/** What push found or wrote before the manifest step (see pushKeys, which orders manifests). */
export interface PreparedPush {
  record: KeyRecord;
  /** The manifest to write, or undefined when the remote already has the key. */
  manifest: RemoteManifest | undefined;
  uploadedBytes: number;
}

/** Opens the remote cache at an s3:// URL. Nothing is loaded or contacted until first use. */
export function openRemote(url: string, options: RemoteOptions = {}): S3Remote {
  return new S3Remote(url, options);
}

export class S3Remote implements Remote {
  readonly url: string;
  readonly s3: S3Access;
  private readonly misses: NegativeCache;
  private readonly options: RemoteOptions;

  constructor(url: string, options: RemoteOptions = {}) {
    this.url = url;
    this.options = options;
    this.s3 = new S3Access(resolveS3Config(url, options), url);
    this.misses = new NegativeCache(url, options.negativeTtlMs ?? 60_000, options.negativeCacheDir);
  }

  async lookup(key: LayerKey): Promise<RemoteManifest | undefined> {
    checkKey(key);
    if (this.misses.has(key)) return undefined;
    const manifest = await this.fetchManifest(key);
    if (!manifest) this.misses.add(key);
    return manifest;
  }

  async pull(key: LayerKey, store: Store, options: PullOptions = {}): Promise<KeyRecord | undefined> {
    const manifest = options.manifest ?? (await this.lookup(key));
    if (!manifest) return undefined;
    const name = options.name ?? manifest.name;
    const meta = { name, buildMs: 0, origin: "pulled" as const, expectDigest: manifest.digest };
    const local = store.lookup(key);
    if (local?.digest === manifest.digest) return local;
    if (store.hasTree(manifest.digest)) return store.link(key, manifest.digest, meta);
    const action = `downloading the blob of ${name || key}`;
    const staging = await store.stage(`pull-${name || key.slice(0, 12)}`);
    try {
      const got = await this.s3.getStream(blobPath(manifest.blob), action, options.signal);
      if (!got) return undefined; // A manifest whose blob is gone is a miss; the next push repairs it.
      if (got.size !== manifest.size) {
        got.body.destroy();
        throw this.corrupt(key, `the blob has ${got.size} bytes, the manifest says ${manifest.size}`);
      }
      const report = (bytesDone: number) =>
        options.onProgress?.({ key, name, bytesDone, bytesTotal: manifest.size });
      report(0);
      let unpacked;
      try {
        // digest: the tree's output digest is computed from the entries as they are written, so
        // the commit below checks it against the manifest without reading the tree back.
        unpacked = await unpackTree(got.body, staging.tree, {
          expectBlobDigest: manifest.blob, expectSize: manifest.size, onBytes: report, signal: options.signal, digest: true,
        });
      } catch (error) {
        if (isCastleError(error) && error.code.startsWith("CASTLE_ARCHIVE_") && error.code !== "CASTLE_ARCHIVE_NO_ZSTD" && error.code !== "CASTLE_ARCHIVE_IO") {
          throw this.corrupt(key, error.message, error);
        }
        throw remoteError(error, { url: this.url, endpoint: this.s3.endpoint, action, key });
      }
      try {
        return await store.commit(staging, key, { ...meta, treeDigest: unpacked.treeDigest });
      } catch (error) {
        if (isCastleError(error) && error.code === "CASTLE_DIGEST_MISMATCH") throw this.corrupt(key, error.message, error);
        throw error;
      }
    } finally {
      await staging.discard();
    }
  }

  async push(record: KeyRecord, store: Store, options: PullOptions = {}): Promise<PushResult> {
    const prepared = await this.preparePush(record, store, options);
    if (prepared.manifest) await this.writeManifest(prepared.manifest, options.signal);
    return { uploadedBytes: prepared.uploadedBytes, skipped: prepared.manifest === undefined };
  }

  /**
   * Push's first half: everything but the manifest. Resolves with manifest undefined when the
   * remote already has the key with a blob that checks out.
   */
  async preparePush(record: KeyRecord, store: Store, options: PullOptions = {}): Promise<PreparedPush> {
    const key = record.key;
    checkKey(key);
    const name = options.name ?? record.name;
    const existing = await this.fetchManifest(key).catch((error: unknown) => {
      if (isCastleError(error) && error.code === "CASTLE_REMOTE_CORRUPT") return undefined; // Overwrite it.
      throw error;
    });
    if (existing) {
      const head = await this.s3.head(blobPath(existing.blob), `checking the blob of ${name}`, options.signal);
      if (!blobMismatch(head, { digest: existing.blob, size: existing.size })) {
        return { record, manifest: undefined, uploadedBytes: 0 };
      }
    }
    if (!store.hasTree(record.digest)) {
      throw new CastleError("CASTLE_CACHE_MISSING_TREE", `cannot push ${name}: its tree ${record.digest} is not in the store`, {
        data: { key, digest: record.digest },
      });
    }
    const partSize = this.options.partSize ?? 16 << 20;
    const staging = await store.stage(`push-${name || key.slice(0, 12)}`);
    try {
      const file = join(staging.dir, "blob");
      const etags = new BlobEtags(partSize);
      const packed = await packTreeToFile(store.treePath(record.digest), file, {
        compression: this.options.compression, signal: options.signal, onChunk: (chunk) => etags.update(chunk),
      });
      const { etags: expectedEtags, md5Base64 } = etags.finish();
      const expected = { digest: packed.digest, size: packed.size, etags: expectedEtags };
      const path = blobPath(packed.digest);
      let uploadedBytes = 0;
      const before = await this.s3.head(path, `checking the blob of ${name}`, options.signal);
      if (blobMismatch(before, expected)) {
        await this.s3.putFile(path, file, packed.size, {
          metadata: { [SHA256_META]: packed.digest },
          contentType: packed.compression === "zstd" ? "application/zstd" : "application/gzip",
          contentMd5: md5Base64,
          partSize,
          multipartThreshold: this.options.multipartThreshold ?? 64 << 20,
          queueSize: this.options.uploadQueueSize ?? 4,
          signal: options.signal,
          onProgress: (bytesDone) => options.onProgress?.({ key, name, bytesDone, bytesTotal: packed.size }),
        }, `uploading the blob of ${name}`);
        uploadedBytes = packed.size;
        const why = blobMismatch(await this.s3.head(path, `verifying the blob of ${name}`, options.signal), expected);
        if (why) throw this.corrupt(key, `the uploaded blob ${packed.digest} does not check out: ${why}`);
      }
      const manifest: RemoteManifest = {
        key, digest: record.digest, blob: packed.digest, size: packed.size, name,
        created: new Date().toISOString(), castleVersion: this.options.castleVersion ?? "dev",
      };
      return { record, manifest, uploadedBytes };
    } finally {
      await staging.discard();
    }
  }

  /** Push's last step: publishes the manifest of a verified blob. */
  async writeManifest(manifest: RemoteManifest, signal?: AbortSignal): Promise<void> {
    await this.s3.putText(keyPath(manifest.key), serializeManifest(manifest), "application/json", `writing the manifest of ${manifest.name}`, signal);
    this.misses.delete(manifest.key);
  }

  /** Every valid manifest in the remote (damaged ones are skipped). */
  async *list(): AsyncGenerator<RemoteManifest> {
    for await (const batch of this.listManifestPaths(32)) {
      const manifests = await Promise.all(
        batch.map((key) => this.fetchManifest(key).catch((error: unknown) => {
          if (isCastleError(error) && error.code === "CASTLE_REMOTE_CORRUPT") return undefined;
          throw error;
        })),
      );
      for (const manifest of manifests) if (manifest) yield manifest;
    }
  }

  /** Forgets remembered misses and closes connections. */
  async close(): Promise<void> {
    await this.s3.close();
  }

  /** Keys of manifests, in batches. */
  private async *listManifestPaths(batchSize: number): AsyncGenerator<LayerKey[]> {
    let batch: LayerKey[] = [];
    for await (const object of this.s3.list("keys", "listing manifests")) {
      const key = object.path.slice("keys/".length);
      if (!isHex64(key)) continue;
      batch.push(key);
      if (batch.length === batchSize) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  }

  private async fetchManifest(key: LayerKey): Promise<RemoteManifest | undefined> {
    const text = await this.s3.getText(keyPath(key), `looking up ${key}`);
    return text === undefined ? undefined : parseManifest(text, key, this.url);
  }

  private corrupt(key: LayerKey, why: string, cause?: unknown): CastleError {
    return new CastleError("CASTLE_REMOTE_CORRUPT", `the remote cache ${this.url} has a bad copy of ${key}: ${why}; it was discarded`, {
      cause,
      data: { url: this.url, key },
      hint: "the remote is only a cache: Castle builds locally instead, and the next push replaces the copy",
    });
  }
}

export function blobPath(digest: string): string {
  return `blobs/sha256/${digest}`;
}

export function keyPath(key: LayerKey): string {
  return `keys/${key}`;
}

function checkKey(key: LayerKey): void {
  if (!isHex64(key)) throw new CastleError("CASTLE_REMOTE_KEY", `invalid layer key ${JSON.stringify(key)}`, { data: { key } });
}
