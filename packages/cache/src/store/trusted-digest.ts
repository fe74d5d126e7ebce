// Owns the one way a digest computed elsewhere may stand in for digesting a staged tree: only
// unpackTree({ digest: true }) in this process mints one (archive/unpack-digest.ts hashes the
// entries as it writes them), for exactly the directory it unpacked into. The store accepts it
// once, for that directory; any other value — made up, copied, reused, or for another tree — is
// ignored and the tree is digested from disk. verifyStore never uses it: it re-reads every tree.

import { resolve } from "node:path";
import type { TrustedTreeDigest } from "../types";

const minted = new WeakMap<object, string>();

/** Called by the unpacker only: vouches that root's tree has this digest. */
export function trustTreeDigest(root: string, digest: Omit<TrustedTreeDigest, "root">): TrustedTreeDigest {
  const value: TrustedTreeDigest = Object.freeze({ ...digest, root: resolve(root) });
  minted.set(value, value.root);
  return value;
}

/** The digest when value was minted here for root and not used yet, else undefined. */
export function takeTrustedDigest(value: unknown, root: string): Omit<TrustedTreeDigest, "root"> | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const forRoot = minted.get(value);
  if (forRoot === undefined || forRoot !== resolve(root)) return undefined;
  minted.delete(value);
  const { digest, bytes, entries } = value as TrustedTreeDigest;
  return { digest, bytes, entries };
}
