// Owns remembering, briefly, that a remote did not have a key, so that repeated misses (every
// `castle build` asks for every layer) do not each cost a round trip. Misses live in memory and,
// when a directory is given (the store's dir("remote")), on disk for other processes; a push of
// the key forgets the miss at once.

import { createHash } from "node:crypto";
import { readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LayerKey } from "../types";

export class NegativeCache {
  private readonly misses = new Map<LayerKey, number>();
  private readonly tag: string;

  /** ttlMs 0 disables the cache. */
  constructor(url: string, private readonly ttlMs: number, private readonly dir?: string) {
    this.tag = createHash("sha256").update(url).digest("hex").slice(0, 16);
  }

  /** True while a recorded miss for key is fresh. */
  has(key: LayerKey, now = Date.now()): boolean {
    if (this.ttlMs <= 0) return false;
    const until = this.misses.get(key) ?? this.readDisk(key);
    if (until === undefined) return false;
    if (until > now) {
      this.misses.set(key, until);
      return true;
    }
    this.delete(key);
    return false;
  }

  add(key: LayerKey, now = Date.now()): void {
    if (this.ttlMs <= 0) return;
    const until = now + this.ttlMs;
    this.misses.set(key, until);
    if (!this.dir) return;
    try {
      writeFileSync(this.file(key), String(until));
    } catch {
      // The on-disk copy is an optimisation only.
    }
  }

  delete(key: LayerKey): void {
    this.misses.delete(key);
    if (!this.dir) return;
    try {
      unlinkSync(this.file(key));
    } catch {
      // Not there.
    }
  }

  private readDisk(key: LayerKey): number | undefined {
    if (!this.dir) return undefined;
    try {
      const until = Number(readFileSync(this.file(key), "utf8"));
      return Number.isFinite(until) ? until : undefined;
    } catch {
      return undefined;
    }
  }

  private file(key: LayerKey): string {
    return join(this.dir as string, `miss-${this.tag}-${key}`);
  }
}
