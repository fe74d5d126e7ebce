// Tests for reading remote URLs and settings: s3:// parsing, URL parameters, and the precedence
// of options, URL and environment for endpoint, region and anonymous access.

import { describe, expect, it } from "vitest";
import { parseS3Url, resolveS3Config } from "../src/index";

describe("parseS3Url", () => {
  it("reads bucket, prefix and parameters", () => {
    expect(parseS3Url("s3://my-bucket")).toEqual({ bucket: "my-bucket", prefix: "" });
    expect(parseS3Url("s3://my-bucket/team/cache/")).toEqual({ bucket: "my-bucket", prefix: "team/cache" });
    expect(parseS3Url("s3://b.c/p?endpoint=http://127.0.0.1:9000&region=eu-west-1&anonymous=1")).toEqual({
      bucket: "b.c", prefix: "p", endpoint: "http://127.0.0.1:9000", region: "eu-west-1", anonymous: true,
    });
  });

  it("refuses what is not an s3:// URL", () => {
    for (const bad of ["https://bucket/x", "bucket/x", "s3://UPPER/x", "s3://ok-bucket/x?color=red"]) {
      expect(() => parseS3Url(bad), bad).toThrow(expect.objectContaining({ code: "CASTLE_REMOTE_URL" }));
    }
  });
});

describe("resolveS3Config", () => {
  it("takes the endpoint from options, then the URL, then CASTLE_S3_ENDPOINT, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL", () => {
    const env = { AWS_ENDPOINT_URL: "http://generic:1", AWS_ENDPOINT_URL_S3: "http://s3:2", CASTLE_S3_ENDPOINT: "http://castle:3" };
    expect(resolveS3Config("s3://b1b/p", { env: {} })).toMatchObject({ endpoint: undefined, forcePathStyle: false });
    expect(resolveS3Config("s3://b1b/p", { env: { AWS_ENDPOINT_URL: "http://generic:1" } }).endpoint).toBe("http://generic:1");
    expect(resolveS3Config("s3://b1b/p", { env: { ...env, CASTLE_S3_ENDPOINT: "" } }).endpoint).toBe("http://s3:2");
    expect(resolveS3Config("s3://b1b/p", { env })).toMatchObject({ endpoint: "http://castle:3", forcePathStyle: true });
    expect(resolveS3Config("s3://b1b/p?endpoint=http://url:4", { env }).endpoint).toBe("http://url:4");
    expect(resolveS3Config("s3://b1b/p?endpoint=http://url:4", { env, endpoint: "http://opt:5" }).endpoint).toBe("http://opt:5");
    expect(() => resolveS3Config("s3://b1b/p", { env: { CASTLE_S3_ENDPOINT: "ftp://x" } })).toThrow(/endpoint/);
  });

  it("takes the region from options, the URL, AWS_REGION, AWS_DEFAULT_REGION, else leaves it to the profile", () => {
    expect(resolveS3Config("s3://b1b", { env: {} }).region).toBeUndefined();
    expect(resolveS3Config("s3://b1b", { env: { AWS_DEFAULT_REGION: "eu-north-1" } }).region).toBe("eu-north-1");
    expect(resolveS3Config("s3://b1b", { env: { AWS_REGION: "ap-south-1", AWS_DEFAULT_REGION: "eu-north-1" } }).region).toBe("ap-south-1");
    expect(resolveS3Config("s3://b1b?region=us-west-2", { env: { AWS_REGION: "ap-south-1" } }).region).toBe("us-west-2");
  });

  it("is anonymous when asked, signed with given credentials, and otherwise decides on first use", () => {
    expect(resolveS3Config("s3://b1b", { env: {} }).anonymous).toBe("auto");
    expect(resolveS3Config("s3://b1b", { env: { CASTLE_S3_ANONYMOUS: "1" } }).anonymous).toBe(true);
    expect(resolveS3Config("s3://b1b?anonymous=1", { env: {} }).anonymous).toBe(true);
    expect(resolveS3Config("s3://b1b", { env: {}, credentials: { accessKeyId: "a", secretAccessKey: "b" } }).anonymous).toBe(false);
    expect(resolveS3Config("s3://b1b", { env: {} })).toMatchObject({ connectTimeoutMs: 5000, idleTimeoutMs: 30000, maxAttempts: 3 });
  });
});
