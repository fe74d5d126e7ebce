// Owns the remote's key → blob manifests (keys/<LayerKey>): their JSON form and a strict check of
// what comes back, so a damaged or foreign manifest is never acted on.

import { CastleError } from "@castle/errors";
import type { LayerKey, RemoteManifest } from "../types";

const HEX64 = /^[0-9a-f]{64}$/;

export function isHex64(value: unknown): value is string {
  return typeof value === "string" && HEX64.test(value);
}

export function serializeManifest(manifest: RemoteManifest): string {
  const { key, digest, blob, size, name, created, castleVersion } = manifest;
  return `${JSON.stringify({ key, digest, blob, size, name, created, castleVersion }, null, 2)}\n`;
}

/** Parses a manifest fetched for key; CASTLE_REMOTE_CORRUPT when it is not a valid one. */
export function parseManifest(text: string, key: LayerKey, url: string): RemoteManifest {
  let value: Partial<RemoteManifest>;
  try {
    value = JSON.parse(text) as Partial<RemoteManifest>;
  } catch (error) {
    throw corrupt(key, url, "is not JSON", error);
  }
  if (typeof value !== "object" || value === null) throw corrupt(key, url, "is not an object");
  if (value.key !== key) throw corrupt(key, url, `is for another key (${String(value.key)})`);
  if (!isHex64(value.digest) || !isHex64(value.blob)) throw corrupt(key, url, "has no valid digest or blob");
  if (typeof value.size !== "number" || !Number.isSafeInteger(value.size) || value.size <= 0) {
    throw corrupt(key, url, "has no valid size");
  }
  return {
    key,
    digest: value.digest,
    blob: value.blob,
    size: value.size,
    name: typeof value.name === "string" ? value.name : "",
    created: typeof value.created === "string" ? value.created : "",
    castleVersion: typeof value.castleVersion === "string" ? value.castleVersion : "",
  };
}

function corrupt(key: LayerKey, url: string, why: string, cause?: unknown): CastleError {
  return new CastleError("CASTLE_REMOTE_CORRUPT", `the manifest of ${key} in ${url} ${why}`, {
    cause,
    data: { key, url },
    hint: "the remote is only a cache: Castle builds locally, and the next push rewrites the manifest",
  });
}
