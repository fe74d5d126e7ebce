// Owns talking to S3: the AWS SDK is imported lazily on first use (it costs ~150 ms, which a CLI
// that never touches a remote must not pay), the client is configured once (timeouts, retries,
// path style, no flexible checksums — see below), and every call maps its failure through
// s3-errors.ts, with "not found" returned as undefined.

import { createReadStream } from "node:fs";
import { type Readable, Transform } from "node:stream";
import type { S3Client } from "@aws-sdk/client-s3";
import { isNotFound, remoteError } from "./s3-errors";
import { type ResolvedS3Config, objectKey } from "./s3-url";

type S3Module = typeof import("@aws-sdk/client-s3");

let sdk: Promise<S3Module> | undefined;
/** The SDK, imported on first call only. */
function loadSdk(): Promise<S3Module> {
  return (sdk ??= import("@aws-sdk/client-s3").then(commonJs));
}

/** A CommonJS package's exports: from source Node also gives them as named exports, but in the
 * CLI bundle (esbuild, code splitting) the namespace holds only `default` (module.exports). */
function commonJs<T>(imported: T): T {
  return (imported as T & { default?: T }).default ?? imported;
}

const SILENT_LOGGER = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

export interface HeadResult {
  size: number;
  etag: string;
  metadata: Record<string, string>;
  /** e.g. "aws:kms", whose ETags are not MD5s. */
  serverSideEncryption: string | undefined;
  lastModified: Date | undefined;
}

export interface ListedObject {
  /** Path relative to the prefix, e.g. "keys/<key>". */
  path: string;
  size: number;
  lastModified: Date | undefined;
}

export interface UploadOptions {
  metadata: Record<string, string>;
  contentType: string;
  /** Base64 MD5 of the body, for single-request uploads (S3 checks it). */
  contentMd5?: string;
  partSize: number;
  multipartThreshold: number;
  queueSize: number;
  onProgress?: (bytesDone: number) => void;
  signal?: AbortSignal;
}

export class S3Access {
  private client: Promise<S3Client> | undefined;
  readonly endpoint: string;

  constructor(readonly config: ResolvedS3Config, readonly url: string) {
    this.endpoint = config.endpoint ?? "AWS S3";
  }

  /** The configured client; resolves region and credentials once, falling back as documented. */
  getClient(): Promise<S3Client> {
    this.client ??= this.makeClient();
    return this.client;
  }

  private async makeClient(): Promise<S3Client> {
    const { S3Client } = await loadSdk();
    const c = this.config;
    const build = (region: string | undefined, anonymous: boolean) =>
      new S3Client({
        region,
        endpoint: c.endpoint,
        forcePathStyle: c.forcePathStyle,
        maxAttempts: c.maxAttempts,
        // Flexible checksums make the SDK send streamed bodies aws-chunked, which S3-compatible
        // servers such as s3rver store framing and all. Castle checks digests itself.
        requestChecksumCalculation: "WHEN_REQUIRED",
        responseChecksumValidation: "WHEN_REQUIRED",
        // Castle reports every failure itself; without a logger the SDK writes some to the console
        // ("An error was encountered in a non-retryable streaming request.").
        logger: SILENT_LOGGER,
        requestHandler: {
          connectionTimeout: c.connectTimeoutMs,
          socketTimeout: c.idleTimeoutMs,
          httpAgent: { keepAlive: true, maxSockets: 64 },
          httpsAgent: { keepAlive: true, maxSockets: 64 },
        },
        ...(anonymous
          ? { credentials: { accessKeyId: "", secretAccessKey: "" }, signer: { sign: async (request: unknown) => request } }
          : c.credentials
            ? { credentials: c.credentials }
            : {}),
      } as NonNullable<ConstructorParameters<typeof S3Client>[0]>);
    let region = c.region;
    let client = build(region, c.anonymous === true);
    if (region === undefined) {
      try {
        region = await client.config.region();
      } catch {
        region = "us-east-1";
        client.destroy();
        client = build(region, c.anonymous === true);
      }
    }
    if (c.anonymous === "auto") {
      try {
        await client.config.credentials();
      } catch {
        // No credentials anywhere in the chain: read the bucket anonymously (public caches).
        client.destroy();
        client = build(region, true);
      }
    }
    return client;
  }

  /** Stops the client's sockets. */
  async close(): Promise<void> {
    if (this.client) (await this.client.catch(() => undefined))?.destroy();
    this.client = undefined;
  }

  private async call<T>(action: string, key: string | undefined, fn: (client: S3Client, s3: S3Module) => Promise<T>): Promise<T> {
    try {
      return await fn(await this.getClient(), await loadSdk());
    } catch (error) {
      throw remoteError(error, { url: this.url, endpoint: this.endpoint, action, key });
    }
  }

  private key(path: string): string {
    return objectKey(this.config, path);
  }

  /** A small object's text, or undefined when it does not exist. */
  async getText(path: string, action: string, signal?: AbortSignal): Promise<string | undefined> {
    return this.call(action, path, async (client, s3) => {
      try {
        const out = await client.send(new s3.GetObjectCommand({ Bucket: this.config.bucket, Key: this.key(path) }), { abortSignal: signal });
        return await (out.Body as { transformToString(): Promise<string> }).transformToString();
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    });
  }

  async head(path: string, action: string, signal?: AbortSignal): Promise<HeadResult | undefined> {
    return this.call(action, path, async (client, s3) => {
      try {
        const out = await client.send(new s3.HeadObjectCommand({ Bucket: this.config.bucket, Key: this.key(path) }), { abortSignal: signal });
        return {
          size: out.ContentLength ?? -1,
          etag: (out.ETag ?? "").replace(/"/g, ""),
          metadata: out.Metadata ?? {},
          serverSideEncryption: out.ServerSideEncryption ?? (out.SSECustomerAlgorithm ? "sse-c" : undefined),
          lastModified: out.LastModified,
        };
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    });
  }

  /** A streaming download; the body's own errors are raw and must go through remoteError. */
  async getStream(path: string, action: string, signal?: AbortSignal): Promise<{ body: Readable; size: number } | undefined> {
    return this.call(action, path, async (client, s3) => {
      try {
        const out = await client.send(new s3.GetObjectCommand({ Bucket: this.config.bucket, Key: this.key(path) }), { abortSignal: signal });
        return { body: out.Body as Readable, size: out.ContentLength ?? -1 };
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    });
  }

  async putText(path: string, body: string, contentType: string, action: string, signal?: AbortSignal): Promise<void> {
    await this.call(action, path, async (client, s3) => {
      await client.send(
        new s3.PutObjectCommand({ Bucket: this.config.bucket, Key: this.key(path), Body: body, ContentType: contentType }),
        { abortSignal: signal },
      );
    });
  }

  /** Uploads a file: one PutObject up to the threshold, else a parallel multipart upload. */
  async putFile(path: string, file: string, size: number, options: UploadOptions, action: string): Promise<void> {
    await this.call(action, path, async (client, s3) => {
      const params = { Bucket: this.config.bucket, Key: this.key(path), Metadata: options.metadata, ContentType: options.contentType };
      // The upload may fail before it reads the file (a part size S3 refuses, a refused request)
      // and the caller then deletes the file: the stream is closed when the upload ends, and a
      // late error of its own (opening a deleted file) must not become an uncaught exception.
      const stream = createReadStream(file, { highWaterMark: 1 << 20 });
      try {
        if (size <= options.multipartThreshold) {
          let done = 0;
          const counted = stream.pipe(
            new Transform({
              transform(chunk: Buffer, _encoding, callback) {
                done += chunk.length;
                options.onProgress?.(done);
                callback(null, chunk);
              },
            }),
          );
          stream.on("error", (error) => counted.destroy(error));
          await client.send(
            new s3.PutObjectCommand({ ...params, Body: counted, ContentLength: size, ContentMD5: options.contentMd5 }),
            { abortSignal: options.signal },
          );
          return;
        }
        stream.on("error", () => {}); // Reported through upload.done() when it matters.
        const { Upload } = commonJs(await import("@aws-sdk/lib-storage"));
        const upload = new Upload({
          client,
          params: { ...params, Body: stream },
          partSize: options.partSize,
          queueSize: options.queueSize,
          leavePartsOnError: false,
        });
        upload.on("httpUploadProgress", (progress) => options.onProgress?.(progress.loaded ?? 0));
        const onAbort = () => void upload.abort().catch(() => {});
        options.signal?.addEventListener("abort", onAbort, { once: true });
        try {
          await upload.done();
        } finally {
          options.signal?.removeEventListener("abort", onAbort);
        }
      } finally {
        stream.destroy();
      }
    });
  }

  /** Every object under prefix/dir/, page by page. */
  async *list(dir: string, action: string): AsyncGenerator<ListedObject> {
    let token: string | undefined;
    const base = this.key(`${dir}/`);
    do {
      const page = await this.call(action, undefined, (client, s3) =>
        client.send(new s3.ListObjectsV2Command({ Bucket: this.config.bucket, Prefix: base, ContinuationToken: token })),
      );
      for (const object of page.Contents ?? []) {
        if (!object.Key) continue;
        yield { path: `${dir}/${object.Key.slice(base.length)}`, size: object.Size ?? 0, lastModified: object.LastModified };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** Deletes objects (paths under the prefix), 1000 per request. */
  async deleteMany(paths: string[], action: string): Promise<void> {
    for (let i = 0; i < paths.length; i += 1000) {
      const batch = paths.slice(i, i + 1000);
      await this.call(action, undefined, async (client, s3) => {
        const out = await client.send(
          new s3.DeleteObjectsCommand({
            Bucket: this.config.bucket,
            Delete: { Objects: batch.map((path) => ({ Key: this.key(path) })), Quiet: true },
          }),
        );
        const failed = out.Errors?.[0];
        if (failed) throw Object.assign(new Error(`cannot delete ${failed.Key}: ${failed.Message}`), { name: failed.Code });
      });
    }
  }
}
