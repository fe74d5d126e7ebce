// Owns listing and pruning a remote cache (`castle cache ls|prune`). Prune deletes manifests
// first and then only blobs no remaining manifest names, so no manifest ever points at a deleted
// blob by prune's doing; blobs younger than a grace period are kept, since a push may be about to
// publish a manifest for them.

import { CastleError } from "@castle/errors";
import type { BlobDigest, LayerKey, RemoteManifest } from "../types";
import type { CacheRemote } from "./cache-remote";
import { contextOf } from "./backend";
import { asRemoteError, remoteFault } from "./remote-errors";

export interface RemotePruneOptions {
  /** Delete manifests created more than this many ms ago. */
  olderThanMs?: number;
  /** Keys never deleted; when given without olderThanMs, every other key is deleted. */
  keep?: Iterable<LayerKey>;
  /** Unreferenced blobs younger than this are kept, ms. Default 1 hour. */
  blobGraceMs?: number;
  /** Report what would be deleted without deleting. Default false. */
  dryRun?: boolean;
  now?: Date;
}

export interface RemotePruneResult {
  deletedKeys: LayerKey[];
  deletedBlobs: BlobDigest[];
  /** Bytes of the deleted blobs. */
  freedBytes: number;
  keptKeys: number;
}

/** Every valid manifest, oldest first. */
export async function listRemote(remote: CacheRemote): Promise<RemoteManifest[]> {
  const all: RemoteManifest[] = [];
  for await (const manifest of remote.list()) all.push(manifest);
  return all.sort((a, b) => a.created.localeCompare(b.created) || a.key.localeCompare(b.key));
}

/** Deletes old or unwanted manifests, then the blobs nothing refers to any more. */
export async function pruneRemote(remote: CacheRemote, options: RemotePruneOptions): Promise<RemotePruneResult> {
  if (options.olderThanMs === undefined && options.keep === undefined) {
    throw new CastleError("CASTLE_REMOTE_PRUNE", "prune needs an age (olderThanMs), a keep set, or both", {
      hint: "e.g. castle cache prune --older-than 30d",
    });
  }
  const backend = remote.backend;
  if (!backend.listBlobs || !backend.remove) {
    throw remoteFault("CASTLE_REMOTE_UNSUPPORTED", "Castle prunes only S3 buckets and directories; a registry collects its own garbage (delete tags there)", contextOf(backend, "pruning"));
  }
  const now = (options.now ?? new Date()).getTime();
  const keep = options.keep ? new Set(options.keep) : undefined;
  const cutoff = options.olderThanMs === undefined ? undefined : now - options.olderThanMs;
  const manifests = await listRemote(remote);
  const doomed = manifests.filter((m) => {
    if (keep?.has(m.key)) return false;
    if (cutoff === undefined) return true;
    const created = Date.parse(m.created);
    return Number.isNaN(created) || created < cutoff;
  });
  const doomedKeys = new Set(doomed.map((m) => m.key));
  const referenced = new Set(manifests.filter((m) => !doomedKeys.has(m.key)).map((m) => m.blob));
  const grace = now - (options.blobGraceMs ?? 3_600_000);
  const blobs: Array<{ digest: BlobDigest; size: number }> = [];
  try {
    for await (const blob of backend.listBlobs()) {
      if (referenced.has(blob.digest)) continue;
      if (blob.lastModified && blob.lastModified.getTime() > grace) continue;
      blobs.push({ digest: blob.digest, size: blob.size });
    }
    if (!options.dryRun) {
      // Manifests first: no manifest ever names a deleted blob.
      await backend.remove({ keys: doomed.map((m) => m.key), blobs: [] });
      await backend.remove({ keys: [], blobs: blobs.map((b) => b.digest) });
    }
  } catch (error) {
    throw asRemoteError(error, contextOf(backend, "pruning"));
  }
  return {
    deletedKeys: doomed.map((m) => m.key),
    deletedBlobs: blobs.map((b) => b.digest),
    freedBytes: blobs.reduce((sum, b) => sum + b.size, 0),
    keptKeys: manifests.length - doomed.length,
  };
}
