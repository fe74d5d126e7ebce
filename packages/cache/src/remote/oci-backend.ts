// Owns the OCI registry backend (oci://host[:port]/repo): a registry most teams already run
// (a self-hosted distribution, Harbor, a cloud registry). Layer blobs are OCI blobs of the
// repository; each layer key gets one small OCI image manifest tagged castle-<key>, whose only
// layer is the blob (an OCI layer: tar+zstd or tar+gzip, whiteouts as .wh. files), whose config is
// the empty descriptor, and whose annotation dev.castle.manifest holds Castle's manifest (so a
// look-up is one request). Any OCI tool can read what Castle pushed (skopeo copy, inspect).
// HTTPS always, except for loopback hosts and registries the user lists as insecure.

import { CastleError } from "@castle/errors";
import type { BlobDigest, LayerKey, RemoteManifest } from "../types";
import { type ExpectedBlob, type PackedFile, type RemoteBackend, type TransferOptions, blobLabel, contextOf } from "./backend";
import { type HttpBody, type HttpClient, type HttpResponse, discard, isLoopback, readText } from "./http-client";
import { MAX_MANIFEST_BYTES } from "./manifest";
import { LoginFailed, RegistryAuth } from "./oci-auth";
import { asRemoteError, remoteFault, statusFault } from "./remote-errors";

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const CASTLE_ARTIFACT = "application/vnd.castle.layer.v1";
export const MANIFEST_ANNOTATION = "dev.castle.manifest";
const EMPTY_CONFIG = { mediaType: "application/vnd.oci.empty.v1+json", digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", size: 2 };

export interface OciOptions {
  /** Registries (host[:port]) reached over plain HTTP. Loopback hosts always are. */
  insecureRegistries?: readonly string[];
  /** Where docker's config.json is looked for (DOCKER_CONFIG, HOME). Default process.env. */
  env?: NodeJS.ProcessEnv;
}

interface Send {
  method: "GET" | "HEAD" | "PUT" | "POST";
  /** Under /v2/<repo>/, or an absolute URL (an upload location). */
  path: string | URL;
  write?: boolean;
  headers?: Record<string, string>;
  body?: HttpBody;
  signal?: AbortSignal;
  action: string;
  key?: LayerKey;
}

export class OciBackend implements RemoteBackend {
  readonly where: string;
  readonly writable = true;
  readonly authAdvice = "check the registry's credentials in docker's config.json (docker login, or skopeo login), and that they may read and push this repository";
  readonly repository: string;
  private readonly base: URL;
  private readonly auth: RegistryAuth;
  private emptyConfig: Promise<void> | undefined;
  /** How the blobs this process packed are compressed (a blob found already there is zstd's,
   * the default; gzip is only the fallback where zstd is not installed). */
  private readonly compressions = new Map<BlobDigest, "zstd" | "gzip">();

  constructor(readonly url: string, private readonly http: HttpClient, options: OciOptions = {}) {
    const { host, repository } = parseOciUrl(url);
    this.repository = repository;
    const plain = isLoopback(new URL(`http://${host}`).hostname) || (options.insecureRegistries ?? []).includes(host);
    this.base = new URL(`${plain ? "http" : "https"}://${host}/v2/${repository}/`);
    this.where = `${plain ? "http" : "https"}://${host}`;
    this.auth = new RegistryAuth(host, http, options.env);
  }

  async getManifest(key: LayerKey, signal?: AbortSignal): Promise<string | undefined> {
    const action = `looking up ${key}`;
    const response = await this.send({ method: "GET", path: `manifests/${tagOf(key)}`, headers: { accept: OCI_MANIFEST }, signal, action, key }, [404]);
    if (!response) return undefined;
    const text = await readText(response, MAX_MANIFEST_BYTES);
    let oci: { layers?: Array<{ digest?: string; size?: number }>; annotations?: Record<string, string> };
    try {
      oci = JSON.parse(text) as typeof oci;
    } catch (error) {
      throw remoteFault("CASTLE_REMOTE_CORRUPT", "the tag's manifest is not JSON", contextOf(this, action, key), { cause: error });
    }
    const castle = oci.annotations?.[MANIFEST_ANNOTATION];
    const layer = oci.layers?.[0];
    if (typeof castle !== "string" || !layer) throw remoteFault("CASTLE_REMOTE_CORRUPT", `the tag ${tagOf(key)} is not a Castle layer`, contextOf(this, action, key));
    // The OCI manifest names the blob too: both must agree, or one of them was altered.
    const named = safeJson(castle) as { blob?: string; size?: number } | undefined;
    if (named && (layer.digest !== `sha256:${named.blob}` || layer.size !== named.size)) {
      throw remoteFault("CASTLE_REMOTE_CORRUPT", `the tag ${tagOf(key)} names blob ${layer.digest}, its Castle manifest ${named.blob}`, contextOf(this, action, key));
    }
    return castle;
  }

  async getBlob(digest: BlobDigest, signal?: AbortSignal, name?: string) {
    const response = await this.send({ method: "GET", path: `blobs/sha256:${digest}`, signal, action: `downloading ${blobLabel(digest, name)}` }, [404]);
    if (!response) return undefined;
    const length = Number(response.headers["content-length"] ?? -1);
    return { body: response.body, size: Number.isSafeInteger(length) ? length : -1 };
  }

  async hasBlob(blob: ExpectedBlob, signal?: AbortSignal): Promise<boolean> {
    if (blob.compression) this.compressions.set(blob.digest, blob.compression);
    return (await this.blobSize(blob.digest, signal, true)) === blob.size;
  }

  async putBlob(blob: PackedFile, options: TransferOptions): Promise<void> {
    const action = `uploading ${blobLabel(blob.digest, blob.name)}`;
    this.compressions.set(blob.digest, blob.compression);
    await this.upload(blob.digest, { file: blob.file, size: blob.size, onProgress: options.onProgress }, action, options.signal);
    const size = await this.blobSize(blob.digest, options.signal, true);
    if (size !== blob.size) {
      throw remoteFault("CASTLE_REMOTE_CORRUPT", `the registry holds ${size ?? 0} bytes for blob ${blob.digest}, expected ${blob.size}`, contextOf(this, action));
    }
  }

  async putManifest(manifest: RemoteManifest, text: string, signal?: AbortSignal): Promise<void> {
    this.emptyConfig ??= this.ensureEmptyConfig(signal);
    await this.emptyConfig.catch((error: unknown) => {
      this.emptyConfig = undefined;
      throw error;
    });
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: CASTLE_ARTIFACT,
      config: EMPTY_CONFIG,
      layers: [{ mediaType: `application/vnd.oci.image.layer.v1.tar+${this.compressions.get(manifest.blob) ?? "zstd"}`, digest: `sha256:${manifest.blob}`, size: manifest.size }],
      annotations: { [MANIFEST_ANNOTATION]: text, "org.opencontainers.image.title": manifest.name },
    });
    await this.send({
      method: "PUT", path: `manifests/${tagOf(manifest.key)}`, write: true, body, headers: { "content-type": OCI_MANIFEST },
      signal, action: `writing the manifest of ${manifest.name || manifest.key}`, key: manifest.key,
    });
  }

  async *listKeys(): AsyncGenerator<LayerKey> {
    let next: URL | undefined = new URL("tags/list?n=1000", this.base);
    while (next) {
      const response = await this.send({ method: "GET", path: next, action: "listing tags" }, [404]);
      if (!response) return;
      const { tags } = JSON.parse(await readText(response, 16 << 20)) as { tags?: string[] | null };
      for (const tag of tags ?? []) if (/^castle-[0-9a-f]{64}$/.test(tag)) yield tag.slice("castle-".length);
      const link = /<([^>]+)>;\s*rel="?next"?/.exec(String(response.headers.link ?? ""))?.[1];
      next = link ? new URL(link, this.base) : undefined;
    }
  }

  async close(): Promise<void> {
    this.http.close();
  }

  private async ensureEmptyConfig(signal?: AbortSignal): Promise<void> {
    const digest = EMPTY_CONFIG.digest.slice("sha256:".length);
    if ((await this.blobSize(digest, signal, true)) === 2) return;
    await this.upload(digest, Buffer.from("{}"), "uploading the empty config blob", signal);
  }

  /** A monolithic upload: POST for a location, PUT the bytes there with their digest. */
  private async upload(digest: string, body: HttpBody, action: string, signal?: AbortSignal): Promise<void> {
    const started = await this.send({ method: "POST", path: "blobs/uploads/", write: true, signal, action });
    discard(started as HttpResponse);
    const location = started?.headers.location;
    if (!location) throw remoteFault("CASTLE_REMOTE_ERROR", "the registry gave no upload location", contextOf(this, action));
    const target = new URL(location, this.base);
    target.searchParams.set("digest", `sha256:${digest}`);
    const done = await this.send({ method: "PUT", path: target, write: true, body, headers: { "content-type": "application/octet-stream" }, signal, action });
    discard(done as HttpResponse);
  }

  private async blobSize(digest: string, signal: AbortSignal | undefined, write: boolean): Promise<number | undefined> {
    const response = await this.send({ method: "HEAD", path: `blobs/sha256:${digest}`, write, signal, action: `checking blob ${digest.slice(0, 12)}` }, [404]);
    if (!response) return undefined;
    discard(response);
    return Number(response.headers["content-length"] ?? -1);
  }

  /**
   * One request with the registry's auth: a 401 is answered once (Basic or a Bearer token for
   * the scope) and the request sent again. Statuses in `missing` resolve undefined; other
   * failures throw CASTLE_REMOTE_*.
   */
  private async send(request: Send, missing: number[] = []): Promise<HttpResponse | undefined> {
    const scope = `repository:${this.repository}:${request.write ? "pull,push" : "pull"}`;
    const context = contextOf(this, request.action, request.key);
    for (let attempt = 0; ; attempt++) {
      const headers = { ...request.headers };
      const authorization = this.auth.header(scope);
      if (authorization) headers.authorization = authorization;
      const url = typeof request.path === "string" ? new URL(request.path, this.base) : request.path;
      let response: HttpResponse;
      try {
        response = await this.http.request({ method: request.method, url, headers, body: request.body, signal: request.signal });
      } catch (error) {
        throw asRemoteError(error, context);
      }
      if (response.status >= 200 && response.status < 300) return response;
      if (response.status === 401 && attempt === 0) {
        discard(response);
        let retry: boolean;
        try {
          retry = await this.auth.answer(response, scope, authorization, request.signal);
        } catch (error) {
          if (error instanceof LoginFailed) throw remoteFault("CASTLE_REMOTE_AUTH", `logging in failed: ${error.message}`, context, { cause: error });
          throw error;
        }
        if (retry) continue;
        throw remoteFault("CASTLE_REMOTE_AUTH", "HTTP 401: the registry wants credentials, and docker's config.json has none (or the wrong ones) for it", context, { data: { status: 401 } });
      }
      const detail = await errorDetail(response);
      if (missing.includes(response.status) && !/UNAUTHORIZED|DENIED/.test(detail)) return undefined;
      throw statusFault(response.status, detail, context);
    }
  }
}

/** Host and repository of an oci:// URL. */
export function parseOciUrl(url: string): { host: string; repository: string } {
  const match = /^oci:\/\/([^/?#]+)\/([^?#]+?)\/?$/.exec(url);
  if (!match) throw badUrl(url, "write it as oci://host[:port]/repository");
  const [, host, repository] = match as unknown as [string, string, string];
  if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$/.test(host) && !/^\[[0-9a-fA-F:]+\](:\d{1,5})?$/.test(host)) throw badUrl(url, `"${host}" is not a host[:port]`);
  if (!/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(repository)) {
    throw badUrl(url, `"${repository}" is not a valid repository name (lowercase letters, digits, separators . _ - and /)`);
  }
  return { host, repository };
}

/** The tag of a layer key's manifest. */
export function tagOf(key: LayerKey): string {
  return `castle-${key}`;
}

async function errorDetail(response: HttpResponse): Promise<string> {
  try {
    const text = await readText(response, 16 << 10);
    const errors = (safeJson(text) as { errors?: Array<{ code?: string; message?: string }> } | undefined)?.errors;
    return errors?.map((e) => [e.code, e.message].filter(Boolean).join(" ")).join("; ") || text.trim().slice(0, 200);
  } catch {
    return "";
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function badUrl(url: string, why: string): CastleError {
  return new CastleError("CASTLE_REMOTE_URL", `bad remote cache URL ${JSON.stringify(url)}: ${why}`, {
    data: { url },
    hint: "e.g. oci://registry.example.org/team/castle-cache, or oci://127.0.0.1:5000/cache",
  });
}
