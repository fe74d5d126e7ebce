// Owns the remote's key → blob manifests (keys/<LayerKey>): their JSON form and a strict check of
// what comes back, so a damaged or foreign manifest is never acted on. Manifests written before
// Castle stated unpacked sizes and signatures still parse (those fields are optional).

import { CastleError } from "@castle/errors";
import type { LayerKey, RemoteManifest, UnpackedSize } from "../types";

const HEX64 = /^[0-9a-f]{64}$/;
/** Largest manifest Castle reads: a real one is under 1 kB, plus its signatures. */
export const MAX_MANIFEST_BYTES = 64 << 10;

export function isHex64(value: unknown): value is string {
  return typeof value === "string" && HEX64.test(value);
}

export function serializeManifest(manifest: RemoteManifest): string {
  const { key, digest, blob, size, unpacked, name, created, castleVersion, signatures } = manifest;
  return `${JSON.stringify({ key, digest, blob, size, unpacked, name, created, castleVersion, signatures }, null, 2)}\n`;
}

/** Parses a manifest fetched for key; CASTLE_REMOTE_CORRUPT when it is not a valid one. */
export function parseManifest(text: string, key: LayerKey, url: string): RemoteManifest {
  let value: Partial<Record<keyof RemoteManifest, unknown>>;
  try {
    value = JSON.parse(text) as typeof value;
  } catch (error) {
    throw corrupt(key, url, "is not JSON", error);
  }
  if (typeof value !== "object" || value === null) throw corrupt(key, url, "is not an object");
  if (value.key !== key) throw corrupt(key, url, `is for another key (${String(value.key)})`);
  if (!isHex64(value.digest) || !isHex64(value.blob)) throw corrupt(key, url, "has no valid digest or blob");
  if (!isCount(value.size) || value.size === 0) throw corrupt(key, url, "has no valid size");
  const manifest: RemoteManifest = {
    key,
    digest: value.digest,
    blob: value.blob,
    size: value.size,
    name: typeof value.name === "string" ? value.name : "",
    created: typeof value.created === "string" ? value.created : "",
    castleVersion: typeof value.castleVersion === "string" ? value.castleVersion : "",
    signatures: [],
  };
  if (value.unpacked !== undefined) manifest.unpacked = parseUnpacked(value.unpacked, key, url);
  if (value.signatures !== undefined) {
    if (!Array.isArray(value.signatures) || !value.signatures.every((s) => typeof s === "string" && s.length < 1024)) {
      throw corrupt(key, url, "has malformed signatures");
    }
    manifest.signatures = value.signatures as string[];
  }
  return manifest;
}

/** CASTLE_REMOTE_CORRUPT for a manifest larger than any Castle writes (it is not read). */
export function manifestTooLarge(url: string, key: LayerKey, size: number): CastleError {
  return corrupt(key, url, `has ${size} bytes, more than any manifest (${MAX_MANIFEST_BYTES})`);
}

function parseUnpacked(value: unknown, key: LayerKey, url: string): UnpackedSize {
  const { bytes, entries } = (typeof value === "object" && value !== null ? value : {}) as Partial<UnpackedSize>;
  if (!isCount(bytes) || !isCount(entries)) throw corrupt(key, url, "has no valid unpacked size");
  return { bytes, entries };
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function corrupt(key: LayerKey, url: string, why: string, cause?: unknown): CastleError {
  return new CastleError("CASTLE_REMOTE_CORRUPT", `the manifest of ${key} in ${url} ${why}`, {
    cause,
    data: { key, url },
  });
}
