// Owns how the sources module reaches isomorphic-git: loading it lazily (it is large, and most
// runs need no git), the injected fs/http clients, telling local repositories from http(s)
// ones, and mapping isomorphic-git's errors onto CastleError codes.

import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { SourceError, reasonOf } from "./errors";

export type Git = typeof import("isomorphic-git");
export type GitFs = typeof import("node:fs");
export type GitHttp = import("isomorphic-git").HttpClient;

/** isomorphic-git itself, loaded on first use. */
export async function loadGit(): Promise<Git> {
  // A CommonJS package: from source Node also gives named exports, but in the CLI bundle the
  // namespace holds only `default` (module.exports) — which has every function in both cases.
  const imported = (await import("isomorphic-git")) as Git & { default?: Git };
  return imported.default ?? imported;
}

/** The default http client: isomorphic-git/http/node. */
export async function defaultGitHttp(): Promise<GitHttp> {
  return (await import("isomorphic-git/http/node")).default as GitHttp;
}

export interface TunedHttpOptions {
  signal?: AbortSignal | undefined;
  timeoutMs?: number | undefined;
  /** Bytes received in response bodies so far, at most every 100 ms (and when a body ends). */
  onBytes?: ((received: number) => void) | undefined;
}

/**
 * An http client that passes the caller's AbortSignal to every request, an idle timeout
 * (honoured by isomorphic-git/http/node; other clients may ignore it), and counts the bytes
 * of every response body as they arrive.
 */
export function tunedHttp(http: GitHttp, options: TunedHttpOptions): GitHttp {
  const { signal, timeoutMs = 30_000, onBytes } = options;
  let received = 0;
  let reported = 0;
  const counted = async function* (body: AsyncIterableIterator<Uint8Array>): AsyncIterableIterator<Uint8Array> {
    for await (const chunk of body) {
      received += chunk.byteLength;
      const now = Date.now();
      if (now - reported >= 100) {
        reported = now;
        onBytes?.(received);
      }
      yield chunk;
    }
    onBytes?.(received);
  };
  return {
    request: async (request) => {
      const response = await http.request({
        ...request,
        ...(signal ? { signal: request.signal ?? signal } : {}),
        fetchOptions: { timeout: timeoutMs, ...(request as { fetchOptions?: object }).fetchOptions },
      } as typeof request);
      return onBytes && response.body ? { ...response, body: counted(response.body) } : response;
    },
  };
}

/** True for http(s) URLs (fetched over the smart protocol); false for local paths and file:// URLs. */
export function isRemoteGitUrl(url: string): boolean {
  return /^https?:\/\//i.test(url);
}

/** The git directory of a local repository given as a path or file:// URL (worktree or bare). */
export function localGitdir(url: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(url) && !url.startsWith("file:")) {
    throw new SourceError("CASTLE_FETCH_FAILED", `cannot fetch ${url}: only http(s) URLs and local paths are supported`, {
      data: { url },
    });
  }
  const path = url.startsWith("file:") ? fileURLToPath(url) : resolve(url);
  const dotgit = join(path, ".git");
  let gitdir = path;
  try {
    if (statSync(dotgit).isDirectory()) gitdir = dotgit;
    else {
      const pointer = /^gitdir:\s*(.+)$/m.exec(readFileSync(dotgit, "utf8"));
      if (pointer?.[1]) gitdir = resolve(dirname(dotgit), pointer[1].trim());
    }
  } catch {
    // No .git: a bare repository, or not a repository (checked below).
  }
  if (!existsSync(join(gitdir, "HEAD")) || !existsSync(join(gitdir, "objects"))) {
    throw new SourceError("CASTLE_FETCH_FAILED", `cannot fetch ${url}: ${path} is not a git repository`, {
      data: { url, path },
    });
  }
  return gitdir;
}

/** Maps a failure of an isomorphic-git network call onto our codes. */
export function gitFetchError(error: unknown, url: string, ref: string | undefined, commit?: string): SourceError {
  if (error instanceof SourceError) return error;
  const code = (error as { code?: unknown }).code;
  if (code === "NotFoundError") {
    return refMissing(url, ref ?? "HEAD", error);
  }
  let reason = reasonOf(error);
  let hint = "check the URL and your network";
  if (code === "HttpError") {
    const data = (error as { data?: { statusCode?: number; statusMessage?: string } }).data;
    const status = data?.statusCode;
    reason = `HTTP ${status ?? "?"} ${data?.statusMessage ?? ""}`.trim();
    if (status === 404) {
      reason = `there is no repository there (${reason})`;
      hint = "check the URL: it is the repository's clone URL, often ending in .git";
    } else if (status === 401 || status === 403) {
      reason = `the server refused access (${reason})`;
      hint = "a private repository needs credentials Castle does not have; clone it yourself and give its directory";
    }
  } else if (code === "SmartHttpError") {
    // A web page where a repository should be: a wrong URL, or a login page.
    const received = /but received:\s*([\s\S]*)$/.exec(messageText(error))?.[1]?.replace(/\s+/g, " ").trim().slice(0, 60);
    reason = `it did not answer as a git repository${received ? ` (it sent "${received}${received.length >= 60 ? "…" : ""}")` : ""}`;
    hint = "check the URL: it is the repository's clone URL, often ending in .git; a private repository needs credentials";
  }
  return new SourceError("CASTLE_FETCH_FAILED", `cannot fetch ${url}${ref ? ` (${ref})` : ""}: ${reason}`, {
    cause: error, data: { url, ref, commit, attempts: [{ url, reason }] },
    hint,
  });
}

function messageText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function refMissing(url: string, ref: string, cause?: unknown, available: string[] = []): SourceError {
  const some = available.slice(0, 10).join(", ");
  return new SourceError(
    "CASTLE_GIT_REF_MISSING",
    `${url} has no branch or tag ${ref}${some ? ` (it has: ${some}${available.length > 10 ? ", …" : ""})` : ""}`,
    { cause, data: { url, ref, available } },
  );
}

export function commitMissing(url: string, ref: string | undefined, commit: string): SourceError {
  return new SourceError(
    "CASTLE_GIT_COMMIT_MISSING",
    `${url} has no commit ${commit}${ref ? ` reachable from ${ref}` : " reachable from its branches"}`,
    {
      data: { url, ref, commit },
      hint: ref ? "check the commit id, or set ref to the branch or tag that contains it" : "set ref to the branch or tag that contains the commit",
    },
  );
}
