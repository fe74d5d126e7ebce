// Tests for manifests: what Castle writes parses back, and anything else is CASTLE_REMOTE_CORRUPT.

import { describe, expect, it } from "vitest";
import { parseManifest, serializeManifest } from "../src/remote/manifest";

const key = "1".repeat(64);
const good = { key, digest: "2".repeat(64), blob: "3".repeat(64), size: 42, name: "base", created: "2026-01-01T00:00:00.000Z", castleVersion: "0.1.0", signatures: [] as string[] };

describe("manifests", () => {
  it("round-trip", () => {
    expect(parseManifest(serializeManifest(good), key, "s3://b")).toEqual(good);
  });

  it("refuse what is not a manifest for this key", () => {
    for (const text of ["nope", "null", JSON.stringify({ ...good, key: "9".repeat(64) }), JSON.stringify({ ...good, blob: "xyz" }), JSON.stringify({ ...good, size: -1 })]) {
      expect(() => parseManifest(text, key, "s3://b"), text).toThrow(expect.objectContaining({ code: "CASTLE_REMOTE_CORRUPT" }));
    }
  });
});
