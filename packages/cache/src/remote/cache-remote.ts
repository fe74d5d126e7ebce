// Owns the remote cache protocol, the same over every backend (backend.ts):
// Look-up: the manifest of a key → parsed strictly → judged by the trust policy (signing.ts):
//   with trusted keys only a manifest one of them signed is accepted (else CASTLE_REMOTE_UNTRUSTED).
// Pull: refuse up front when the stated unpacked size exceeds the free space → stream the blob
//   under a transfer watch (a rate floor and a deadline) → verify its sha256 and size, unpack with
//   the stated bytes and entries as hard caps, compute the tree's output digest as it is written →
//   commit with the manifest's output digest. Cancelling is CASTLE_CANCELLED, never a bad copy.
// Push: manifest already there, its blob intact and signed as asked → skip; else pack, upload the
//   blob unless a verified copy is there, state the unpacked size, sign, and write the manifest
//   last. Any fault is a CastleError CASTLE_REMOTE_*, with nothing staged, committed or published.

import { join } from "node:path";
import { CastleError, isCastleError } from "@castle/errors";
import type { Compression } from "../archive/compress";
import { packTreeToFile } from "../archive/pack";
import { unpackTree } from "../archive/unpack";
import type { KeyRecord, LayerKey, PullOptions, PushResult, Remote, RemoteManifest, Store } from "../types";
import { type PackedFile, type RemoteBackend, contextOf } from "./backend";
import { isHex64, parseManifest, serializeManifest } from "./manifest";
import { NegativeCache } from "./negative-cache";
import { asRemoteError, remoteFault } from "./remote-errors";
import { type PublicKey, type SigningKey, TrustPolicy, parsePublicKey, signManifest, signedBy } from "./signing";
import { type TransferLimits, TransferWatch } from "./transfer-watch";
import { freeSpace, unpackedSizeOf } from "./unpacked-size";

export interface CacheRemoteOptions {
  /** How long a miss is remembered, ms. Default 60000; 0 disables. */
  negativeTtlMs?: number;
  /** Where misses are also remembered for other processes, e.g. store.dir("remote"). Default: memory only. */
  negativeCacheDir?: string;
  /** Compression of pushed blobs. Default: zstd when installed, else gzip. */
  compression?: Compression;
  /** Recorded in manifests. Default "dev". */
  castleVersion?: string;
  /** Public keys (`name:base64` or parsed) whose signatures are trusted; with any, signatures are required. */
  trustedKeys?: Iterable<string | PublicKey>;
  /** Signs every manifest pushed. */
  signingKey?: SigningKey;
  /** The floor and deadline of downloads. */
  transfer?: TransferLimits;
}

/** What push found or wrote before the manifest step (see pushKeys, which orders manifests). */
export interface PreparedPush {
  record: KeyRecord;
  /** The manifest to write, or undefined when the remote already has the key. */
  manifest: RemoteManifest | undefined;
  uploadedBytes: number;
}

export class CacheRemote implements Remote {
  readonly url: string;
  readonly policy: TrustPolicy;
  private readonly misses: NegativeCache;

  constructor(readonly backend: RemoteBackend, private readonly options: CacheRemoteOptions = {}) {
    this.url = backend.url;
    this.misses = new NegativeCache(backend.url, options.negativeTtlMs ?? 60_000, options.negativeCacheDir);
    this.policy = new TrustPolicy([...(options.trustedKeys ?? [])].map((k) => (typeof k === "string" ? parsePublicKey(k) : k)));
  }

  get writable(): boolean {
    return this.backend.writable;
  }

  async lookup(key: LayerKey): Promise<RemoteManifest | undefined> {
    checkKey(key);
    if (this.misses.has(key)) return undefined;
    const manifest = await this.fetchManifest(key);
    if (!manifest) {
      this.misses.add(key);
      return undefined;
    }
    return this.judged(manifest);
  }

  async pull(key: LayerKey, store: Store, options: PullOptions = {}): Promise<KeyRecord | undefined> {
    const found = options.manifest ?? (await this.lookup(key));
    if (!found) return undefined;
    const manifest = this.judged(found);
    const name = options.name ?? manifest.name;
    const meta = { name, buildMs: 0, origin: "pulled" as const, expectDigest: manifest.digest };
    const local = store.lookup(key);
    if (local?.digest === manifest.digest) return local;
    if (store.hasTree(manifest.digest)) return store.link(key, manifest.digest, meta);
    const context = contextOf(this.backend, `downloading the blob of ${name || key}`, key);
    const free = freeSpace(store.root);
    if (manifest.unpacked && manifest.unpacked.bytes > free) {
      throw new CastleError("CASTLE_CACHE_NO_SPACE", `${name || key} unpacks to ${manifest.unpacked.bytes} bytes, more than the ${free} bytes free in the store ${store.root}`, {
        data: { key, url: this.url, needed: manifest.unpacked.bytes, free },
        hint: "free some space (e.g. castle cache prune) and run again",
      });
    }
    if (options.signal?.aborted) throw remoteFault("CASTLE_CANCELLED", "cancelled", context);
    const watch = new TransferWatch(manifest.size, this.options.transfer ?? {}, context, options.signal);
    const staging = await store.stage(`pull-${name || key.slice(0, 12)}`);
    try {
      const got = await this.backend.getBlob(manifest.blob, watch.signal, name || undefined);
      if (!got) return undefined; // A manifest whose blob is gone is a miss; the next push repairs it.
      // Errors after the unpack stopped reading (a file opened late, a socket reset) matter no more.
      got.body.on("error", () => {});
      if (got.size >= 0 && got.size !== manifest.size) {
        got.body.destroy();
        throw this.corrupt(key, `the blob has ${got.size} bytes, the manifest says ${manifest.size}`);
      }
      const report = (bytesDone: number) => {
        watch.progress(bytesDone);
        options.onProgress?.({ key, name, bytesDone, bytesTotal: manifest.size });
      };
      report(0);
      // digest: the tree's output digest is computed from the entries as they are written, so
      // the commit below checks it against the manifest without reading the tree back. The
      // stated size caps the unpack; a manifest from before Castle stated it is capped by the
      // free space, so it stops before the disk fills.
      const unpacked = await unpackTree(got.body, staging.tree, {
        expectBlobDigest: manifest.blob, expectSize: manifest.size, onBytes: report, signal: watch.signal, digest: true,
        maxTotalBytes: manifest.unpacked?.bytes ?? free,
        ...(manifest.unpacked ? { maxEntries: manifest.unpacked.entries } : {}),
      });
      return await store.commit(staging, key, { ...meta, treeDigest: unpacked.treeDigest });
    } catch (error) {
      throw this.pullFailure(error, watch, key, context);
    } finally {
      watch.stop();
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
   * remote already has the key with a blob that checks out (and the signature asked for).
   */
  async preparePush(record: KeyRecord, store: Store, options: PullOptions = {}): Promise<PreparedPush> {
    const key = record.key;
    checkKey(key);
    const name = options.name ?? record.name;
    if (!this.backend.writable) {
      throw remoteFault("CASTLE_REMOTE_UNSUPPORTED", "it is read-only (plain HTTP); export to the bucket or directory it serves", contextOf(this.backend, `exporting ${name}`, key));
    }
    try {
      const existing = await this.fetchManifest(key).catch((error: unknown) => {
        if (isCastleError(error) && error.code === "CASTLE_REMOTE_CORRUPT") return undefined; // Overwrite it.
        throw error;
      });
      if (existing && (await this.backend.hasBlob({ digest: existing.blob, size: existing.size }, options.signal))) {
        const signer = this.options.signingKey;
        const signedAsAsked = !signer || signedBy(existing, signer.publicKey);
        // Another machine's output for this key stays (first writer wins), unless it lacks the
        // signature asked for: then this machine's output replaces it.
        if (signedAsAsked && (existing.unpacked || existing.digest !== record.digest)) return { record, manifest: undefined, uploadedBytes: 0 };
        if (existing.digest === record.digest) {
          // The same tree: state its size and sign, without uploading the blob again.
          const manifest = { ...existing, unpacked: existing.unpacked ?? (await unpackedSizeOf(store.treePath(record.digest))) };
          return { record, manifest: this.signed(manifest), uploadedBytes: 0 };
        }
      }
      return await this.upload(record, store, name, options);
    } catch (error) {
      throw asRemoteError(error, contextOf(this.backend, `exporting ${name}`, key));
    }
  }

  /** Push's last step: publishes the manifest of a verified blob. */
  async writeManifest(manifest: RemoteManifest, signal?: AbortSignal): Promise<void> {
    const { trust: _, ...stored } = manifest;
    try {
      await this.backend.putManifest(stored, serializeManifest(stored), signal);
    } catch (error) {
      throw asRemoteError(error, contextOf(this.backend, `writing the manifest of ${manifest.name || manifest.key}`, manifest.key));
    }
    this.misses.delete(manifest.key);
  }

  /** Every valid manifest in the remote; damaged or untrusted ones are skipped (told to onSkipped). */
  async *list(onSkipped?: (key: LayerKey, error: CastleError) => void): AsyncGenerator<RemoteManifest> {
    let batch: LayerKey[] = [];
    const fetchBatch = async () => {
      const manifests = await Promise.all(
        batch.map((key) => this.lookup(key).catch((error: unknown) => {
          if (isCastleError(error) && (error.code === "CASTLE_REMOTE_CORRUPT" || error.code === "CASTLE_REMOTE_UNTRUSTED")) {
            onSkipped?.(key, error as CastleError);
            return undefined;
          }
          throw error;
        })),
      );
      batch = [];
      return manifests.filter((m): m is RemoteManifest => m !== undefined);
    };
    try {
      for await (const key of this.backend.listKeys()) {
        batch.push(key);
        if (batch.length === 32) yield* await fetchBatch();
      }
    } catch (error) {
      throw asRemoteError(error, contextOf(this.backend, "listing manifests"));
    }
    yield* await fetchBatch();
  }

  /** Closes connections. */
  async close(): Promise<void> {
    await this.backend.close();
  }

  private async upload(record: KeyRecord, store: Store, name: string, options: PullOptions): Promise<PreparedPush> {
    const key = record.key;
    if (!store.hasTree(record.digest)) {
      throw new CastleError("CASTLE_CACHE_MISSING_TREE", `cannot push ${name}: its tree ${record.digest} is not in the store`, {
        data: { key, digest: record.digest },
      });
    }
    const staging = await store.stage(`push-${name || key.slice(0, 12)}`);
    try {
      const file = join(staging.dir, "blob");
      const tree = store.treePath(record.digest);
      const witness = this.backend.newWitness?.();
      const counting = unpackedSizeOf(tree);
      counting.catch(() => {}); // Awaited below.
      const packed = await packTreeToFile(tree, file, {
        compression: this.options.compression, signal: options.signal, onChunk: witness && ((chunk) => witness.update(chunk)),
      });
      const blob: PackedFile = { digest: packed.digest, name, size: packed.size, file, compression: packed.compression, witnessed: witness?.finish() };
      let uploadedBytes = 0;
      if (!(await this.backend.hasBlob(blob, options.signal))) {
        await this.backend.putBlob(blob, {
          signal: options.signal,
          onProgress: (bytesDone) => options.onProgress?.({ key, name, bytesDone, bytesTotal: packed.size }),
        });
        uploadedBytes = packed.size;
      }
      const manifest: RemoteManifest = {
        key, digest: record.digest, blob: packed.digest, size: packed.size, unpacked: await counting, name,
        created: new Date().toISOString(), castleVersion: this.options.castleVersion ?? "dev", signatures: [],
      };
      return { record, manifest: this.signed(manifest), uploadedBytes };
    } finally {
      await staging.discard();
    }
  }

  private signed(manifest: RemoteManifest): RemoteManifest {
    return this.options.signingKey ? signManifest(manifest, this.options.signingKey) : manifest;
  }

  /** The manifest with its trust, or CASTLE_REMOTE_UNTRUSTED. */
  private judged(manifest: RemoteManifest): RemoteManifest {
    const verdict = this.policy.judge(manifest);
    if (!verdict.ok) {
      throw remoteFault("CASTLE_REMOTE_UNTRUSTED", `the manifest of ${manifest.name || manifest.key} was refused: ${verdict.why}`, contextOf(this.backend, `looking up ${manifest.key}`, manifest.key));
    }
    return { ...manifest, trust: verdict.trust };
  }

  private async fetchManifest(key: LayerKey): Promise<RemoteManifest | undefined> {
    const context = contextOf(this.backend, `looking up ${key}`, key);
    const watch = new TransferWatch(0, this.options.transfer ?? {}, context);
    try {
      const text = await this.backend.getManifest(key, watch.signal);
      return text === undefined ? undefined : parseManifest(text, key, this.url);
    } catch (error) {
      throw watch.tripped ?? asRemoteError(error, context);
    } finally {
      watch.stop();
    }
  }

  /** What a failed pull is: a cancellation, a transfer abandoned, a bad copy, or a remote fault. */
  private pullFailure(error: unknown, watch: TransferWatch, key: LayerKey, context: ReturnType<typeof contextOf>): CastleError {
    if (watch.cancelled) return remoteFault("CASTLE_CANCELLED", "cancelled", context, { cause: error });
    if (watch.tripped) return watch.tripped;
    if (isCastleError(error)) {
      const code = error.code;
      if (code.startsWith("CASTLE_ARCHIVE_") && code !== "CASTLE_ARCHIVE_NO_ZSTD" && code !== "CASTLE_ARCHIVE_IO") return this.corrupt(key, error.message, error);
      if (code === "CASTLE_DIGEST_MISMATCH") return this.corrupt(key, error.message, error);
      return error as CastleError;
    }
    return asRemoteError(error, context);
  }

  private corrupt(key: LayerKey, why: string, cause?: unknown): CastleError {
    return new CastleError("CASTLE_REMOTE_CORRUPT", `the remote cache ${this.url} has a bad copy of ${key}: ${why}; it was discarded`, {
      cause,
      data: { url: this.url, key },
    });
  }
}

function checkKey(key: LayerKey): void {
  if (!isHex64(key)) throw new CastleError("CASTLE_REMOTE_KEY", `invalid layer key ${JSON.stringify(key)}`, { data: { key } });
}
