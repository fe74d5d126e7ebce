// Owns the one small interface every kind of remote cache implements (S3, an OCI registry, a static
// HTTP server, a directory) and the layout they share: blobs/sha256/<blob digest> and
// keys/<layer key> under the URL's prefix (a registry keeps the same two things as OCI blobs and
// one tagged manifest per key). A backend only moves bytes and says "not there" by resolving
// undefined; the protocol — what is checked, signed, written last — is CacheRemote's.

import type { Readable } from "node:stream";
import type { BlobDigest, LayerKey, RemoteManifest } from "../types";
import type { RemoteContext } from "./remote-errors";

/** A blob Castle packed, in a local file, ready to upload. */
export interface PackedFile {
  digest: BlobDigest;
  /** The layer's name, for messages. */
  name?: string;
  size: number;
  file: string;
  compression: "zstd" | "gzip";
  /** What the backend's witness saw while the blob was packed (see BlobWitness). */
  witnessed?: unknown;
}

/**
 * Sees a blob's bytes as they are packed, for a backend that needs more than its sha256 to check
 * an upload (S3: the MD5s its ETags are made of).
 */
export interface BlobWitness {
  update(chunk: Buffer): void;
  finish(): unknown;
}

/** A blob as the remote should hold it. */
export interface ExpectedBlob {
  digest: BlobDigest;
  size: number;
  /** Known when this process packed the blob. */
  compression?: "zstd" | "gzip";
  witnessed?: unknown;
}

export interface ListedBlob {
  digest: BlobDigest;
  size: number;
  lastModified?: Date;
}

export interface TransferOptions {
  signal?: AbortSignal;
  /** Bytes sent so far. */
  onProgress?: (bytesDone: number) => void;
}

export interface RemoteBackend {
  /** The URL as the user wrote it. */
  readonly url: string;
  /** Where requests go, for messages: an endpoint, a registry, a directory. */
  readonly where: string;
  /** False for remotes Castle can only read. */
  readonly writable: boolean;
  /** What to check when access is refused. */
  readonly authAdvice: string;
  /** The manifest text stored for key, or undefined when there is none. */
  getManifest(key: LayerKey, signal?: AbortSignal): Promise<string | undefined>;
  /** A download of the blob, or undefined when it is not there. */
  getBlob(digest: BlobDigest, signal?: AbortSignal, name?: string): Promise<{ body: Readable; size: number } | undefined>;
  /** True when the remote holds a complete copy of the blob that checks out. */
  hasBlob(blob: ExpectedBlob, signal?: AbortSignal): Promise<boolean>;
  /** Uploads a packed blob and checks what the remote then holds. */
  putBlob(blob: PackedFile, options: TransferOptions): Promise<void>;
  /** Publishes a manifest (its blob is already up and verified). */
  putManifest(manifest: RemoteManifest, text: string, signal?: AbortSignal): Promise<void>;
  /** The keys that have a manifest. */
  listKeys(): AsyncIterable<LayerKey>;
  /** Every blob, for prune; absent where a remote cannot list or delete them. */
  listBlobs?(): AsyncIterable<ListedBlob>;
  /** Deletes manifests and blobs, for prune. */
  remove?(objects: { keys: LayerKey[]; blobs: BlobDigest[] }): Promise<void>;
  /** A witness for the next blob packed for this backend, when it needs one. */
  newWitness?(): BlobWitness;
  close(): Promise<void>;
}

export function blobPath(digest: BlobDigest): string {
  return `blobs/sha256/${digest}`;
}

export function keyPath(key: LayerKey): string {
  return `keys/${key}`;
}

/** "the blob of musl", or "blob 1a2b3c4d5e6f" when the layer's name is not known: for messages. */
export function blobLabel(digest: BlobDigest, name?: string): string {
  return name ? `the blob of ${name}` : `blob ${digest.slice(0, 12)}`;
}

/** A context for remote errors about this backend. */
export function contextOf(backend: RemoteBackend, action: string, key?: LayerKey): RemoteContext {
  return { url: backend.url, where: backend.where, action, key, authAdvice: backend.authAdvice };
}
