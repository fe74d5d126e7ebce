// Tests for the negative-lookup cache: misses expire, survive in a directory for other
// processes, are forgotten on push, and can be turned off.

import { describe, expect, it } from "vitest";
import { NegativeCache } from "../src/remote/negative-cache";
import { keyOf } from "./helpers/stores";
import { tempDir } from "./helpers/trees";

describe("NegativeCache", () => {
  it("remembers a miss until its time runs out", () => {
    const cache = new NegativeCache("s3://b/p", 60_000);
    const key = keyOf("a");
    cache.add(key, 1_000);
    expect(cache.has(key, 30_000)).toBe(true);
    expect(cache.has(key, 61_001)).toBe(false);
    expect(cache.has(key, 30_000)).toBe(false);
  });

  it("shares misses through a directory, per remote URL, and forgets them on delete", () => {
    const dir = tempDir();
    const key = keyOf("b");
    new NegativeCache("s3://b/p", 60_000, dir).add(key);
    expect(new NegativeCache("s3://b/p", 60_000, dir).has(key)).toBe(true);
    expect(new NegativeCache("s3://b/other", 60_000, dir).has(key)).toBe(false);
    new NegativeCache("s3://b/p", 60_000, dir).delete(key);
    expect(new NegativeCache("s3://b/p", 60_000, dir).has(key)).toBe(false);
  });

  it("does nothing with a ttl of 0", () => {
    const cache = new NegativeCache("s3://b/p", 0, tempDir());
    cache.add(keyOf("c"));
    expect(cache.has(keyOf("c"))).toBe(false);
  });
});
