// Test helper: checks a remote cache in a real S3 bucket against Castle's promise — no manifest
// is ever visible without a complete, verified blob. Every keys/<key> must be a valid manifest for
// that key, and its blob must exist with the manifest's size, hash to the manifest's blob digest,
// and unpack to a tree with the manifest's output digest.

import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { digestTree, removeTree, unpackTree } from "@castle/cache";

export interface BucketReport {
  problems: string[];
  manifests: number;
  blobs: number;
}

async function get(client: S3Client, bucket: string, key: string): Promise<Buffer | undefined> {
  try {
    const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await out.Body!.transformToByteArray());
  } catch (error) {
    if ((error as { name?: string }).name === "NoSuchKey" || (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
    throw error;
  }
}

/** Every object key under prefix/. */
export async function listObjects(client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/`, ContinuationToken: token }));
    for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

export async function checkBucket(client: S3Client, bucket: string, prefix: string): Promise<BucketReport> {
  const problems: string[] = [];
  const objects = await listObjects(client, bucket, prefix);
  const manifests = objects.filter((k) => k.startsWith(`${prefix}/keys/`));
  for (const object of manifests) {
    const key = object.slice(`${prefix}/keys/`.length);
    const text = await get(client, bucket, object);
    let manifest: { key?: string; digest?: string; blob?: string; size?: number };
    try {
      manifest = JSON.parse(text?.toString("utf8") ?? "") as typeof manifest;
    } catch {
      problems.push(`${object}: not a JSON manifest`);
      continue;
    }
    if (manifest.key !== key) problems.push(`${object}: names key ${manifest.key}`);
    const blob = await get(client, bucket, `${prefix}/blobs/sha256/${manifest.blob}`);
    if (!blob) {
      problems.push(`${object}: its blob ${manifest.blob} is missing`);
      continue;
    }
    if (blob.length !== manifest.size) problems.push(`${object}: its blob has ${blob.length} bytes, the manifest says ${manifest.size}`);
    const actual = createHash("sha256").update(blob).digest("hex");
    if (actual !== manifest.blob) {
      problems.push(`${object}: its blob hashes to ${actual}, not ${manifest.blob}`);
      continue;
    }
    const dir = mkdtempSync(join(tmpdir(), "castle-rel-bucket-"));
    try {
      await unpackTree(Readable.from([blob]), dir);
      const digest = digestTree(dir).digest;
      if (digest !== manifest.digest) problems.push(`${object}: its blob unpacks to ${digest}, not ${manifest.digest}`);
    } catch (error) {
      problems.push(`${object}: its blob does not unpack: ${(error as Error).message}`);
    } finally {
      removeTree(dir);
    }
  }
  return { problems, manifests: manifests.length, blobs: objects.filter((k) => k.startsWith(`${prefix}/blobs/`)).length };
}

/** Replaces an object's bytes (keeping nothing of its metadata unless given). */
export async function putObject(client: S3Client, bucket: string, key: string, body: Buffer | string, metadata?: Record<string, string>): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: metadata }));
}

export async function deleteObject(client: S3Client, bucket: string, key: string): Promise<void> {
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

export async function getObject(client: S3Client, bucket: string, key: string): Promise<Buffer | undefined> {
  return get(client, bucket, key);
}
