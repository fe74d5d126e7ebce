// Tests for S3 blob verification: the ETags a faithful copy may have (plain MD5, S3 multipart form)
// and the reasons a HEAD result is not trusted.

import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { BlobEtags, SHA256_META, blobMismatch } from "../src/remote/s3-blob-check";

describe("BlobEtags", () => {
  it("computes the plain MD5 and S3's multipart ETag for the part size", () => {
    const data = Buffer.alloc(2500, 7);
    const etags = new BlobEtags(1000);
    etags.update(data.subarray(0, 1));
    etags.update(data.subarray(1, 1700));
    etags.update(data.subarray(1700));
    const { etags: [plain, multipart], md5Base64 } = etags.finish();
    const md5 = (b: Buffer) => createHash("md5").update(b).digest();
    expect(plain).toBe(md5(data).toString("hex"));
    expect(md5Base64).toBe(md5(data).toString("base64"));
    const parts = [data.subarray(0, 1000), data.subarray(1000, 2000), data.subarray(2000)].map(md5);
    expect(multipart).toBe(`${md5(Buffer.concat(parts)).toString("hex")}-3`);
  });
});

describe("blobMismatch", () => {
  const digest = "a".repeat(64);
  const head = { size: 10, etag: "e1", metadata: { [SHA256_META]: digest }, serverSideEncryption: undefined, lastModified: undefined };
  it("trusts only the right size, sha256 metadata and ETag", () => {
    expect(blobMismatch(head, { digest, size: 10, etags: ["e1", "x-2"] })).toBeUndefined();
    expect(blobMismatch(undefined, { digest, size: 10 })).toMatch(/missing/);
    expect(blobMismatch({ ...head, size: 9 }, { digest, size: 10 })).toMatch(/9 bytes/);
    expect(blobMismatch({ ...head, metadata: {} }, { digest, size: 10 })).toMatch(/metadata/);
    expect(blobMismatch(head, { digest, size: 10, etags: ["other"] })).toMatch(/ETag/);
    expect(blobMismatch({ ...head, serverSideEncryption: "aws:kms" }, { digest, size: 10, etags: ["other"] })).toBeUndefined();
  });
});
