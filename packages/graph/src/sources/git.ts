// Owns fetching git commits: `resolveRef` (ls-remote style: which commit a branch or tag names),
// and `fetchGitCommit`, which makes a commit's objects available and returns a checkout that can
// write its tree. Remote (http smart protocol) repositories are cached, one bare repository per
// URL under <cacheDir>/<sha256(url)>, fetched shallow first and deeper only when the commit is
// not at the tip; a cached commit needs no network at all. Local repositories are read in place.

import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { withLock } from "@castle/cache/store";
import { throwIfAborted } from "./errors";
import {
  commitMissing, gitFetchError, isRemoteGitUrl, loadGit, localGitdir, refMissing, tunedHttp,
  type Git, type GitFs, type GitHttp,
} from "./git-client";
import { writeGitTree } from "./git-tree";

export interface GitRemoteOptions {
  /** An http(s) URL, a local path or a file:// URL. */
  url: string;
  /** Branch, tag or full ref. Default: the repository's HEAD. */
  ref?: string;
  /** Usually node:fs. */
  fs: GitFs;
  /** isomorphic-git http client (isomorphic-git/http/node); unused for local repositories. */
  http: GitHttp;
  signal?: AbortSignal;
  /** Give up on a request when no data arrives for this long. Default 30 000. */
  timeoutMs?: number;
}

export interface ResolvedRef {
  /** The full ref name, e.g. refs/heads/main ("HEAD" when HEAD is detached). */
  ref: string;
  commit: string;
}

export interface FetchGitCommitOptions extends GitRemoteOptions {
  /** The commit wanted. Default: what `ref` names now (one ls-remote round trip). */
  commit?: string;
  /** Where cached repositories live, e.g. store.dir("git"). */
  cacheDir: string;
  /** Bytes received from the server so far, as they arrive (remote repositories only). */
  onBytes?: (received: number) => void;
}

export interface GitCheckout {
  url: string;
  commit: string;
  /** The git directory holding the commit's objects. */
  gitdir: string;
  /** Writes the commit's tree (or `subdir` of it) into dest, an empty directory; returns files written. */
  writeTree(dest: string, subdir?: string): Promise<number>;
}

/** The commit a branch or tag (default HEAD) names, peeling annotated tags. */
export async function resolveRef(options: GitRemoteOptions): Promise<ResolvedRef> {
  const git = await loadGit();
  const { url, fs } = options;
  const wanted = options.ref ?? "HEAD";
  if (!isRemoteGitUrl(url)) {
    const gitdir = localGitdir(url);
    let full: string;
    try {
      full =
        wanted === "HEAD"
          ? ((await git.currentBranch({ fs, gitdir, fullname: true })) ?? "HEAD")
          : await git.expandRef({ fs, gitdir, ref: wanted });
    } catch (error) {
      throw refMissing(url, wanted, error, await git.listBranches({ fs, gitdir }).catch(() => []));
    }
    return { ref: full, commit: await peel(git, fs, gitdir, await git.resolveRef({ fs, gitdir, ref: full })) };
  }
  throwIfAborted(options.signal, `resolving ${wanted} of ${url}`);
  let refs: Awaited<ReturnType<Git["listServerRefs"]>>;
  try {
    refs = await git.listServerRefs({
      http: tunedHttp(options.http, options), url, protocolVersion: 1, symrefs: true, peelTags: true,
    });
  } catch (error) {
    throw gitFetchError(error, url, options.ref);
  }
  const names = wanted === "HEAD" ? ["HEAD"] : [wanted, `refs/heads/${wanted}`, `refs/tags/${wanted}`];
  for (const name of names) {
    const found = refs.find((r) => r.ref === name);
    if (found) return { ref: found.target ?? found.ref, commit: found.peeled ?? found.oid };
  }
  const branches = refs.filter((r) => r.ref.startsWith("refs/heads/")).map((r) => r.ref.slice(11));
  throw refMissing(url, wanted, undefined, branches);
}

/** Makes `commit` (or the commit `ref` names) available and returns a checkout of it. */
export async function fetchGitCommit(options: FetchGitCommitOptions): Promise<GitCheckout> {
  const git = await loadGit();
  const { url, fs } = options;
  const cache = {};
  if (!isRemoteGitUrl(url)) {
    const gitdir = localGitdir(url);
    const named = options.ref !== undefined || options.commit === undefined ? await resolveRef(options) : undefined;
    const commit = options.commit ?? named!.commit;
    if (!(await hasCommit(git, fs, gitdir, commit, cache))) throw commitMissing(url, options.ref, commit);
    return checkout(git, fs, url, gitdir, commit, cache);
  }
  const gitdir = join(options.cacheDir, createHash("sha256").update(url).digest("hex"));
  const lockFile = `${gitdir}.lock`;
  const commit = await withLock(lockFile, async () => {
    if (!existsSync(join(gitdir, "config"))) {
      await git.init({ fs, dir: gitdir, gitdir, bare: true });
      await git.addRemote({ fs, gitdir, remote: "origin", url, force: true });
    }
    if (options.commit && (await hasCommit(git, fs, gitdir, options.commit, cache))) return options.commit;
    const wanted = options.commit ?? (await resolveRef(options)).commit;
    if (await hasCommit(git, fs, gitdir, wanted, cache)) return wanted;
    // Shallow first (the pinned commit is usually the tip), then the whole branch, then, with no
    // ref to go on, every branch and tag.
    const attempts: Array<{ depth?: number; singleBranch: boolean }> = [
      { depth: 1, singleBranch: true },
      { depth: 2147483647, singleBranch: true },
      ...(options.ref === undefined ? [{ depth: 2147483647, singleBranch: false }] : []),
    ];
    const http = tunedHttp(options.http, options);
    for (const attempt of attempts) {
      throwIfAborted(options.signal, `fetching ${url}`);
      try {
        await git.fetch({
          fs, http, gitdir, url, cache,
          ...(options.ref ? { ref: options.ref } : {}),
          singleBranch: attempt.singleBranch, tags: !attempt.singleBranch, depth: attempt.depth,
        });
      } catch (error) {
        throwIfAborted(options.signal, `fetching ${url}`);
        throw gitFetchError(error, url, options.ref, wanted);
      }
      if (await hasCommit(git, fs, gitdir, wanted, cache)) return wanted;
    }
    throw commitMissing(url, options.ref, wanted);
  });
  return checkout(git, fs, url, gitdir, commit, cache, lockFile);
}

function checkout(git: Git, fs: GitFs, url: string, gitdir: string, commit: string, cache: object, lockFile?: string): GitCheckout {
  const write = (dest: string, subdir = "") => writeGitTree({ git, fs, gitdir, commit, subdir, dest, cache, url });
  return {
    url, commit, gitdir,
    // A cached repository is locked while read, so a concurrent fetch never shows a half-written pack.
    writeTree: (dest, subdir) => (lockFile ? withLock(lockFile, () => write(dest, subdir)) : write(dest, subdir)),
  };
}

async function hasCommit(git: Git, fs: GitFs, gitdir: string, oid: string, cache: object): Promise<boolean> {
  try {
    await git.readCommit({ fs, gitdir, oid, cache });
    return true;
  } catch {
    return false;
  }
}

async function peel(git: Git, fs: GitFs, gitdir: string, oid: string): Promise<string> {
  for (let i = 0; i < 10; i++) {
    const object = await git.readObject({ fs, gitdir, oid, format: "parsed" });
    if (object.type !== "tag") return oid;
    oid = (object.object as { object: string }).object;
  }
  return oid;
}
