// Tests for signing manifests: key files and lines round-trip, what a signature covers (a golden
// fingerprint), and the trust policy — with trusted keys only a manifest one of them signed is
// accepted; an unsigned one, one signed by another key, a wrong or truncated signature, or a
// signed manifest replayed under another layer's key is refused; without keys, anything is
// accepted but marked unsigned or unverified.

import { describe, expect, it } from "vitest";
import { TrustPolicy, fingerprint, generateSigningKey, parsePublicKey, parseSigningKey, signManifest, signedBy } from "../src/remote/signing";
import type { RemoteManifest } from "../src/types";

const manifest: RemoteManifest = {
  key: "1".repeat(64), digest: "2".repeat(64), blob: "3".repeat(64), size: 42, unpacked: { bytes: 1000, entries: 7 },
  name: "base", created: "2026-01-01T00:00:00.000Z", castleVersion: "0.1.0", signatures: [],
};

function pair(name: string) {
  const { secret, publicLine } = generateSigningKey(name);
  return { secret: parseSigningKey(secret), publicKey: parsePublicKey(publicLine), secretText: secret, publicLine };
}

describe("keys", () => {
  it("a generated pair parses back; the secret file names the key and holds seed and public key", () => {
    const { secret, publicKey, secretText, publicLine } = pair("ci-1");
    expect(publicLine).toMatch(/^ci-1:[A-Za-z0-9+/]{43}=$/);
    expect(secretText).toMatch(/^ci-1:[A-Za-z0-9+/]{86}==\n$/);
    expect(secret.name).toBe("ci-1");
    expect(secret.publicKey.line).toBe(publicLine);
    expect(publicKey.line).toBe(publicLine);
  });

  it("refuses malformed keys with CASTLE_KEY_INVALID", () => {
    const { secretText, publicLine } = pair("k");
    for (const bad of ["", "nocolon", ":abc", "bad name:AAAA", `k:${"A".repeat(10)}`, "k:not base64!"]) {
      expect(() => parsePublicKey(bad), bad).toThrow(expect.objectContaining({ code: "CASTLE_KEY_INVALID" }));
    }
    expect(() => parseSigningKey(publicLine)).toThrow(expect.objectContaining({ code: "CASTLE_KEY_INVALID" }));
    // A secret whose public half was swapped for another key's.
    const other = pair("k").publicLine.split(":")[1]!;
    const raw = Buffer.from(secretText.trim().split(":")[1]!, "base64");
    const swapped = `k:${Buffer.concat([raw.subarray(0, 32), Buffer.from(other, "base64")]).toString("base64")}`;
    expect(() => parseSigningKey(swapped)).toThrow(/public half/);
    expect(() => generateSigningKey("no spaces")).toThrow(expect.objectContaining({ code: "CASTLE_KEY_INVALID" }));
  });
});

describe("signatures", () => {
  it("cover the key, the blob, the output digest and the sizes (golden)", () => {
    expect(fingerprint(manifest)).toBe(`castle-layer-v1;${"1".repeat(64)};${"3".repeat(64)};${"2".repeat(64)};42;1000;7`);
    expect(fingerprint({ ...manifest, unpacked: undefined })).toBe(`castle-layer-v1;${"1".repeat(64)};${"3".repeat(64)};${"2".repeat(64)};42;-`);
  });

  it("verify only what was signed", () => {
    const { secret, publicKey } = pair("ci");
    const signed = signManifest(manifest, secret);
    expect(signed.signatures).toHaveLength(1);
    expect(signed.signatures[0]).toMatch(/^ci:[A-Za-z0-9+/]{86}==$/);
    expect(signedBy(signed, publicKey)).toBe(true);
    for (const change of [{ key: "9".repeat(64) }, { blob: "9".repeat(64) }, { digest: "9".repeat(64) }, { size: 43 }, { unpacked: { bytes: 1001, entries: 7 } }, { unpacked: { bytes: 1000, entries: 8 } }]) {
      expect(signedBy({ ...signed, ...change }, publicKey), JSON.stringify(change)).toBe(false);
    }
    // Name and date are not covered: they decide nothing about the bytes pulled.
    expect(signedBy({ ...signed, name: "other", created: "" }, publicKey)).toBe(true);
    // Signing again replaces the key's own signature, keeps others'.
    const { secret: second } = pair("second");
    const twice = signManifest(signManifest(signed, second), secret);
    expect(twice.signatures.map((s) => s.split(":")[0]).sort()).toEqual(["ci", "second"]);
  });
});

describe("TrustPolicy", () => {
  const ci = pair("ci");
  const intruder = pair("intruder");
  const impostor = pair("ci"); // Same name, another key.
  const signed = signManifest(manifest, ci.secret);

  it("without trusted keys accepts everything, saying what it is", () => {
    const policy = new TrustPolicy();
    expect(policy.judge(manifest)).toEqual({ ok: true, trust: { kind: "unsigned" } });
    expect(policy.judge(signed)).toEqual({ ok: true, trust: { kind: "unverified", signers: ["ci"] } });
  });

  it("with trusted keys accepts only manifests they signed", () => {
    const policy = new TrustPolicy([ci.publicKey]);
    expect(policy.judge(signed)).toEqual({ ok: true, trust: { kind: "signed", by: "ci" } });
    const cases: Array<[string, RemoteManifest, RegExp]> = [
      ["unsigned", manifest, /not signed/],
      ["signed by an untrusted key", signManifest(manifest, intruder.secret), /intruder, which is not a trusted key/],
      ["signed by another key with a trusted name", signManifest(manifest, impostor.secret), /does not match/],
      ["a truncated signature", { ...signed, signatures: [signed.signatures[0]!.slice(0, 40)] }, /does not match/],
      ["garbage", { ...signed, signatures: ["ci:!!!!", ":", "x"] }, /does not match/],
      ["replayed under another layer's key", { ...signed, key: "4".repeat(64) }, /does not match/],
      ["pointing at another blob", { ...signed, blob: "5".repeat(64) }, /does not match/],
    ];
    for (const [what, candidate, why] of cases) {
      const verdict = policy.judge(candidate);
      expect(verdict.ok, what).toBe(false);
      expect(verdict.ok ? "" : verdict.why, what).toMatch(why);
    }
  });

  it("any one of several trusted keys will do", () => {
    const policy = new TrustPolicy([intruder.publicKey, ci.publicKey]);
    expect(policy.judge(signed)).toMatchObject({ ok: true, trust: { by: "ci" } });
  });
});
