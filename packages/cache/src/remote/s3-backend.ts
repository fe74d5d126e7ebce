// Owns the S3 backend (s3://bucket/prefix): the shared layout as objects under the prefix, blobs
// carrying their sha256 as metadata (castle-sha256). A blob is trusted only when HEAD shows the
// expected size, that metadata and — when this process packed it — an ETag equal to its MD5
// (s3-blob-check.ts); uploads are checked the same way before any manifest names them.

import { CastleError } from "@castle/errors";
import type { BlobDigest, LayerKey, RemoteManifest } from "../types";
import { type BlobWitness, type ExpectedBlob, type ListedBlob, type PackedFile, type RemoteBackend, type TransferOptions, blobLabel, blobPath, keyPath } from "./backend";
import { isHex64 } from "./manifest";
import { BlobEtags, SHA256_META, blobMismatch } from "./s3-blob-check";
import { S3Access } from "./s3-client";
import { type S3Settings, resolveS3Config } from "./s3-url";

export interface S3BackendOptions extends S3Settings {
  /** Multipart part size, bytes. Default 16 MiB. */
  partSize?: number;
  /** Blobs larger than this are uploaded in parts. Default 64 MiB. */
  multipartThreshold?: number;
  /** Parts uploaded at once per blob. Default 4. */
  uploadQueueSize?: number;
}

export class S3Backend implements RemoteBackend {
  readonly s3: S3Access;
  readonly where: string;
  readonly writable = true;
  readonly authAdvice = "check the credentials (AWS_ACCESS_KEY_ID/AWS_PROFILE), the bucket's policy, the region and the endpoint";
  private readonly partSize: number;

  constructor(readonly url: string, private readonly options: S3BackendOptions = {}) {
    this.s3 = new S3Access(resolveS3Config(url, options), url);
    this.where = this.s3.endpoint;
    this.partSize = options.partSize ?? 16 << 20;
  }

  getManifest(key: LayerKey, signal?: AbortSignal): Promise<string | undefined> {
    return this.s3.getText(keyPath(key), `looking up ${key}`, signal);
  }

  getBlob(digest: BlobDigest, signal?: AbortSignal, name?: string) {
    return this.s3.getStream(blobPath(digest), `downloading ${blobLabel(digest, name)}`, signal);
  }

  async hasBlob(blob: ExpectedBlob, signal?: AbortSignal): Promise<boolean> {
    return (await this.blobProblem(blob, "checking", signal)) === undefined;
  }

  newWitness(): BlobWitness {
    return new BlobEtags(this.partSize);
  }

  async putBlob(blob: PackedFile, options: TransferOptions): Promise<void> {
    const { md5Base64 } = (blob.witnessed ?? {}) as { md5Base64?: string };
    await this.s3.putFile(blobPath(blob.digest), blob.file, blob.size, {
      metadata: { [SHA256_META]: blob.digest },
      contentType: blob.compression === "zstd" ? "application/zstd" : "application/gzip",
      contentMd5: md5Base64,
      partSize: this.partSize,
      multipartThreshold: this.options.multipartThreshold ?? 64 << 20,
      queueSize: this.options.uploadQueueSize ?? 4,
      signal: options.signal,
      onProgress: options.onProgress,
    }, `uploading ${blobLabel(blob.digest, blob.name)}`);
    const why = await this.blobProblem(blob, "verifying", options.signal);
    if (why) {
      throw new CastleError("CASTLE_REMOTE_CORRUPT", `the blob ${blob.digest} uploaded to ${this.url} does not check out: ${why}`, {
        data: { url: this.url, blob: blob.digest },
      });
    }
  }

  async putManifest(manifest: RemoteManifest, text: string, signal?: AbortSignal): Promise<void> {
    await this.s3.putText(keyPath(manifest.key), text, "application/json", `writing the manifest of ${manifest.name || manifest.key}`, signal);
  }

  async *listKeys(): AsyncGenerator<LayerKey> {
    for await (const object of this.s3.list("keys", "listing manifests")) {
      const key = object.path.slice("keys/".length);
      if (isHex64(key)) yield key;
    }
  }

  async *listBlobs(): AsyncGenerator<ListedBlob> {
    for await (const object of this.s3.list("blobs/sha256", "listing blobs")) {
      const digest = object.path.slice("blobs/sha256/".length);
      if (isHex64(digest)) yield { digest, size: object.size, lastModified: object.lastModified };
    }
  }

  async remove(objects: { keys: LayerKey[]; blobs: BlobDigest[] }): Promise<void> {
    await this.s3.deleteMany(objects.keys.map(keyPath), "deleting manifests");
    await this.s3.deleteMany(objects.blobs.map(blobPath), "deleting blobs");
  }

  async close(): Promise<void> {
    await this.s3.close();
  }

  private async blobProblem(blob: ExpectedBlob & { name?: string }, verb: string, signal?: AbortSignal): Promise<string | undefined> {
    const head = await this.s3.head(blobPath(blob.digest), `${verb} ${blobLabel(blob.digest, blob.name)}`, signal);
    const { etags } = (blob.witnessed ?? {}) as { etags?: string[] };
    return blobMismatch(head, { digest: blob.digest, size: blob.size, etags });
  }
}
