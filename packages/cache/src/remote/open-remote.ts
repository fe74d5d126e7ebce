// Owns turning a remote cache URL into a Remote: the scheme picks the backend — s3://bucket/prefix,
// oci://host[:port]/repository, https://host/path (read-only), file:///directory — and the same
// protocol (cache-remote.ts) runs over each. Nothing is loaded or contacted until first use.

import { CastleError } from "@castle/errors";
import type { RemoteBackend } from "./backend";
import { CacheRemote, type CacheRemoteOptions } from "./cache-remote";
import { FileBackend } from "./file-backend";
import { HttpBackend } from "./http-backend";
import { HttpClient } from "./http-client";
import { OciBackend, type OciOptions } from "./oci-backend";
import { S3Backend, type S3BackendOptions } from "./s3-backend";

export interface RemoteOptions extends CacheRemoteOptions, S3BackendOptions, OciOptions {}

/** The kinds of remote Castle speaks, by URL scheme, for messages and help. */
export const REMOTE_SCHEMES = "s3://bucket/prefix, oci://host/repository, https://host/path (read-only) or file:///directory";

/** Opens the remote cache at url. */
export function openRemote(url: string, options: RemoteOptions = {}): CacheRemote {
  return new CacheRemote(openBackend(url, options), options);
}

/** The backend for url's scheme. */
export function openBackend(url: string, options: RemoteOptions = {}): RemoteBackend {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  const http = () => new HttpClient({ connectTimeoutMs: options.connectTimeoutMs, idleTimeoutMs: options.idleTimeoutMs });
  switch (scheme) {
    case "s3":
      return new S3Backend(url, options);
    case "oci":
      return new OciBackend(url, http(), options);
    case "http":
    case "https":
      return new HttpBackend(url, http());
    case "file":
      return new FileBackend(url);
    default:
      throw new CastleError("CASTLE_REMOTE_URL", `bad remote cache URL ${JSON.stringify(url)}: ${scheme ? `Castle does not speak ${scheme}://` : "it has no scheme"}`, {
        data: { url },
        hint: `write it as ${REMOTE_SCHEMES}`,
      });
  }
}
