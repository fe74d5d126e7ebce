// Owns signing manifests, Nix's way with Node's own ed25519: a key pair has a name; the public key
// is one line, `name:base64(32 bytes)`, and the secret key file holds `name:base64(seed ‖ public)`.
// A signature is `name:base64(64 bytes)` over the manifest's fingerprint — the layer key, the blob
// digest, the output digest, the blob's size and what it unpacks to — so a manifest copied under
// another key, or edited to point at another blob, no longer verifies. Which manifests are
// accepted (TrustPolicy) follows from the trusted keys: with none, unsigned ones too; with some,
// only those a trusted key signed.

import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from "node:crypto";
import { CastleError } from "@castle/errors";
import type { ManifestTrust, RemoteManifest } from "../types";

/** A key pair's public half, as `castle cache keygen` prints it. */
export interface PublicKey {
  name: string;
  key: KeyObject;
  /** The one-line form, name:base64. */
  line: string;
}

export interface SigningKey {
  name: string;
  key: KeyObject;
  publicKey: PublicKey;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;

/** A new key pair named name: the secret file's contents and the public key's line. */
export function generateSigningKey(name: string): { secret: string; publicLine: string } {
  checkName(name);
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  const seed = Buffer.from(jwk.d as string, "base64url");
  const pub = Buffer.from(jwk.x as string, "base64url");
  return { secret: `${name}:${Buffer.concat([seed, pub]).toString("base64")}\n`, publicLine: `${name}:${pub.toString("base64")}` };
}

/** Parses a trusted key line `name:base64`; CASTLE_KEY_INVALID with where it came from otherwise. */
export function parsePublicKey(line: string, from = "a trusted key"): PublicKey {
  const [name, data] = splitKey(line.trim(), from);
  const raw = Buffer.from(data, "base64");
  if (raw.length !== 32) throw badKey(from, `its key is ${raw.length} bytes, an ed25519 public key has 32`);
  try {
    const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") }, format: "jwk" });
    return { name, key, line: `${name}:${raw.toString("base64")}` };
  } catch (error) {
    throw badKey(from, (error as Error).message, error);
  }
}

/** Parses a secret key file's contents (`name:base64(seed ‖ public)`). */
export function parseSigningKey(text: string, from = "the signing key"): SigningKey {
  const [name, data] = splitKey(text.trim(), from);
  const raw = Buffer.from(data, "base64");
  if (raw.length !== 64) throw badKey(from, `it holds ${raw.length} bytes, a Castle secret key has 64 (seed and public key)`);
  const d = raw.subarray(0, 32).toString("base64url");
  const x = raw.subarray(32).toString("base64url");
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: { kty: "OKP", crv: "Ed25519", d, x }, format: "jwk" });
  } catch (error) {
    throw badKey(from, (error as Error).message, error);
  }
  // The public half must be the seed's: a file edited by hand would otherwise sign with a key
  // whose name and public key disagree, and every importer would refuse its signatures.
  const derived = Buffer.from(createPublicKey(key).export({ format: "jwk" }).x as string, "base64url");
  if (!derived.equals(raw.subarray(32))) throw badKey(from, "its public half does not belong to its secret half");
  return { name, key, publicKey: { name, key: createPublicKey(key), line: `${name}:${derived.toString("base64")}` } };
}

/** What a signature covers: everything that decides which bytes a pull puts in the store. */
export function fingerprint(manifest: RemoteManifest): string {
  const unpacked = manifest.unpacked ? `${manifest.unpacked.bytes};${manifest.unpacked.entries}` : "-";
  return `castle-layer-v1;${manifest.key};${manifest.blob};${manifest.digest};${manifest.size};${unpacked}`;
}

/** The manifest with key's signature added (replacing an older one by the same name). */
export function signManifest(manifest: RemoteManifest, key: SigningKey): RemoteManifest {
  const signature = sign(null, Buffer.from(fingerprint(manifest)), key.key).toString("base64");
  const others = manifest.signatures.filter((s) => !s.startsWith(`${key.name}:`));
  return { ...manifest, signatures: [...others, `${key.name}:${signature}`] };
}

/** True when the manifest carries a valid signature by key. */
export function signedBy(manifest: RemoteManifest, key: PublicKey): boolean {
  const message = Buffer.from(fingerprint(manifest));
  for (const signature of manifest.signatures) {
    const colon = signature.indexOf(":");
    if (colon <= 0 || signature.slice(0, colon) !== key.name) continue;
    const raw = Buffer.from(signature.slice(colon + 1), "base64");
    if (raw.length !== 64) continue;
    try {
      if (verify(null, message, key.key, raw)) return true;
    } catch {
      // A malformed signature is simply not a valid one.
    }
  }
  return false;
}

/**
 * Which manifests an importer accepts. With trusted keys, only those one of them signed (an
 * unsigned, badly signed or foreign-signed manifest is refused: CASTLE_REMOTE_UNTRUSTED); without,
 * any manifest, marked unsigned or unverified so the user can be told.
 */
export class TrustPolicy {
  readonly trusted: readonly PublicKey[];

  constructor(trusted: Iterable<PublicKey> = []) {
    this.trusted = [...trusted];
  }

  get requiresSignatures(): boolean {
    return this.trusted.length > 0;
  }

  /** The manifest's trust, or why it is refused (a reason, for CASTLE_REMOTE_UNTRUSTED). */
  judge(manifest: RemoteManifest): { ok: true; trust: ManifestTrust } | { ok: false; why: string } {
    const signers = manifest.signatures.map((s) => s.slice(0, Math.max(0, s.indexOf(":")))).filter(Boolean);
    if (!this.requiresSignatures) {
      return { ok: true, trust: signers.length === 0 ? { kind: "unsigned" } : { kind: "unverified", signers } };
    }
    for (const key of this.trusted) if (signedBy(manifest, key)) return { ok: true, trust: { kind: "signed", by: key.name } };
    if (signers.length === 0) return { ok: false, why: "it is not signed, and trusted keys are configured" };
    const names = this.trusted.map((k) => k.name);
    const known = signers.filter((s) => names.includes(s));
    return {
      ok: false,
      why: known.length > 0
        ? `its signature by ${known.join(", ")} does not match its contents (it was altered, or copied from another layer)`
        : `it is signed by ${signers.join(", ")}, which is not a trusted key (trusted: ${names.join(", ")})`,
    };
  }
}

function splitKey(text: string, from: string): [string, string] {
  const colon = text.indexOf(":");
  if (colon <= 0) throw badKey(from, "it is not of the form name:base64");
  const name = text.slice(0, colon);
  const data = text.slice(colon + 1);
  if (!NAME.test(name)) throw badKey(from, `"${name}" is not a valid key name (letters, digits, . _ + -)`);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(data)) throw badKey(from, "its key is not base64");
  return [name, data];
}

function checkName(name: string): void {
  if (!NAME.test(name)) {
    throw new CastleError("CASTLE_KEY_INVALID", `"${name}" is not a valid key name`, {
      data: { name },
      hint: "use letters, digits, dots, dashes, e.g. castle cache keygen ci-1",
    });
  }
}

function badKey(from: string, why: string, cause?: unknown): CastleError {
  return new CastleError("CASTLE_KEY_INVALID", `${from} is not a valid Castle key: ${why}`, {
    cause,
    data: { from },
    hint: "keys look like name:base64; make a pair with `castle cache keygen <name>`",
  });
}
