// Owns deciding whether a blob in the bucket is exactly the blob Castle packed. A blob object is
// trusted only when HEAD shows (1) the expected size, (2) Castle's metadata naming the expected
// sha256, and (3) an ETag equal to the MD5 the server computed over the bytes it stored — the
// plain MD5 of a single upload (s3rver also uses it for multipart), or S3's multipart form
// md5(part md5s)-N for Castle's part size. (3) is what catches a partial or foreign object, or
// one stored with aws-chunked framing; it is skipped only for SSE-KMS/SSE-C objects, whose ETags
// are not MD5s. Downloads verify the sha256 again in any case.

import { createHash, type Hash } from "node:crypto";
import type { BlobDigest } from "../types";
import type { HeadResult } from "./s3-client";

/** User metadata key (x-amz-meta-castle-sha256) carrying a blob's sha256. */
export const SHA256_META = "castle-sha256";

/** MD5 of a blob as a whole and per part of partSize, computed while the blob is written. */
export class BlobEtags {
  private readonly whole = createHash("md5");
  private readonly parts: Buffer[] = [];
  private part: Hash = createHash("md5");
  private partFill = 0;
  private size = 0;

  constructor(readonly partSize: number) {}

  update(chunk: Buffer): void {
    this.whole.update(chunk);
    this.size += chunk.length;
    let at = 0;
    while (at < chunk.length) {
      const take = Math.min(this.partSize - this.partFill, chunk.length - at);
      this.part.update(chunk.subarray(at, at + take));
      this.partFill += take;
      at += take;
      if (this.partFill === this.partSize) {
        this.parts.push(this.part.digest());
        this.part = createHash("md5");
        this.partFill = 0;
      }
    }
  }

  /** The ETags a faithful copy of the blob may have, and its MD5 in base64 (Content-MD5). */
  finish(): { etags: string[]; md5Base64: string } {
    const md5 = this.whole.digest();
    const parts = this.partFill > 0 || this.parts.length === 0 ? [...this.parts, this.part.digest()] : this.parts;
    const multipart = `${createHash("md5").update(Buffer.concat(parts)).digest("hex")}-${parts.length}`;
    return { etags: [md5.toString("hex"), multipart], md5Base64: md5.toString("base64") };
  }
}

export interface ExpectedBlob {
  digest: BlobDigest;
  size: number;
  /** When known (Castle packed the blob here): ETags a faithful copy may have. */
  etags?: string[];
}

/** Why a HEAD result is not the expected blob, or undefined when it is. */
export function blobMismatch(head: HeadResult | undefined, expected: ExpectedBlob): string | undefined {
  if (!head) return "it is missing";
  if (head.size !== expected.size) return `it has ${head.size} bytes, expected ${expected.size}`;
  const claimed = head.metadata[SHA256_META];
  if (claimed !== expected.digest) return `its ${SHA256_META} metadata is ${claimed ?? "missing"}`;
  const opaqueEtag = head.serverSideEncryption !== undefined && head.serverSideEncryption !== "AES256";
  if (expected.etags && !opaqueEtag && !expected.etags.includes(head.etag)) {
    return `its ETag ${head.etag} is not the MD5 of the packed blob`;
  }
  return undefined;
}
