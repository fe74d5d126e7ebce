// Owns finding the definition `castle run <git-url|dir> [branch] [subdir]` names: a local
// directory as it is (`<dir> [subdir]` when the second word is a directory inside it), or a
// commit of a git repository (http(s) or local) checked out once per commit under the store, so a
// second run of an unmoved branch fetches nothing. With no target, $CASTLE_DEFINITION (set inside
// a system to the definition it was started from).

import * as fs from "node:fs";
import { existsSync, readFileSync, renameSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { createHash } from "node:crypto";
import { removeTree, writeFileAtomic, type LocalStore } from "@castle/cache/store";
import { defaultGitHttp, fetchGitCommit, resolveRef, type SourceProgress } from "@castle/graph";
import { CastleError } from "@castle/errors";
import { UsageError } from "./usage-error";

export interface DefinitionTarget {
  target: string;
  branch?: string;
  subdir?: string;
}

export interface DefinitionLocation {
  /** Directory holding castle.ts. */
  dir: string;
  /** The directory or checkout it was found in (dir is root/subdir). */
  root: string;
  subdir?: string;
  /** How to name it to the user: the path, or url@branch (commit). */
  label: string;
  commit?: string;
}

/** Reads `<git-url|dir> [branch] [subdir]` from positionals. */
export function definitionTarget(positionals: string[], command: string, env: NodeJS.ProcessEnv = process.env): DefinitionTarget {
  const [target, branch, subdir, ...extra] = positionals.length === 0 && env.CASTLE_DEFINITION ? [env.CASTLE_DEFINITION] : positionals;
  if (!target) throw new UsageError("which system? give a git URL or a directory", command);
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")} (put a command after --)`, command);
  return { target, ...(branch ? { branch } : {}), ...(subdir ? { subdir } : {}) };
}

export async function locateDefinition(
  where: DefinitionTarget,
  store: LocalStore,
  options: { offline?: boolean; signal?: AbortSignal; onProgress?: (progress: SourceProgress) => void } = {},
): Promise<DefinitionLocation> {
  const isUrl = /^(https?|file):\/\//i.test(where.target);
  // `<dir> <subdir>`: a directory with a definition in a directory of it (not a branch of a repository).
  const inDir = !isUrl && where.branch !== undefined && where.subdir === undefined && isDirectory(join(resolve(where.target), where.branch));
  if (!isUrl && (where.branch === undefined || inDir)) {
    let root = resolve(where.target);
    // A path to the definition file itself means its directory.
    if (!inDir && basename(root) === "castle.ts" && existsSync(root) && statSync(root).isFile()) root = dirname(root);
    if (!isDirectory(root)) {
      throw new CastleError("CASTLE_DEFINITION_MISSING", `${where.target} is neither a directory nor a git URL`, {
        data: { target: where.target },
        hint: "give a directory holding castle.ts, or a git URL (https://…, file://…) with an optional branch",
      });
    }
    const subdir = inDir ? where.branch : undefined;
    const dir = subdir ? join(root, subdir) : root;
    return { dir, root, ...(subdir ? { subdir } : {}), label: dir };
  }
  const url = isUrl ? where.target : resolve(where.target);
  const http = await defaultGitHttp();
  const refFile = join(store.dir("repos"), `${createHash("sha256").update(`${url}\0${where.branch ?? "HEAD"}`).digest("hex").slice(0, 32)}.json`);
  let commit: string;
  if (options.offline) {
    commit = lastCommit(refFile, url, where.branch);
  } else {
    commit = (await resolveRef({ url, fs, http, signal: options.signal, ...(where.branch ? { ref: where.branch } : {}) })).commit;
    writeFileAtomic(refFile, JSON.stringify({ url, branch: where.branch ?? "HEAD", commit }) + "\n", { durable: false });
  }
  const checkout = checkoutDir(store, commit);
  if (!existsSync(join(checkout, ".castle-complete"))) {
    // Reported like a source, so the first cold run shows the clone as it happens.
    const source = repositoryName(url);
    const report = (phase: SourceProgress["phase"], bytesDone = 0) => options.onProgress?.({ source, phase, bytesDone });
    // Only a remote repository is downloaded; a local one is only read (then written out below).
    if (/^https?:\/\//i.test(url)) report("clone");
    const fetched = await fetchGitCommit({
      url, commit, fs, http, cacheDir: store.dir("git"), signal: options.signal, ...(where.branch ? { ref: where.branch } : {}),
      onBytes: (received) => report("clone", received),
    });
    const staging = await store.stage(`checkout-${commit.slice(0, 12)}`);
    try {
      report("unpack");
      await fetched.writeTree(staging.tree);
      fs.writeFileSync(join(staging.tree, ".castle-complete"), `${commit}\n`);
      removeTree(checkout);
      renameSync(staging.tree, checkout);
      report("done");
    } finally {
      await staging.discard();
    }
  }
  const dir = where.subdir ? join(checkout, where.subdir) : checkout;
  if (!existsSync(dir)) {
    throw new CastleError("CASTLE_DEFINITION_MISSING", `${url}${where.branch ? `@${where.branch}` : ""} has no directory ${where.subdir}`, {
      data: { url, branch: where.branch, subdir: where.subdir, commit },
    });
  }
  return {
    dir, root: checkout, ...(where.subdir ? { subdir: where.subdir } : {}),
    label: `${url}${where.branch ? `@${where.branch}` : ""} (${commit.slice(0, 12)})`, commit,
  };
}

/** Where the store keeps the files of a commit of a definition repository. */
export function checkoutDir(store: LocalStore, commit: string): string {
  return join(store.dir("checkouts"), commit);
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** "distro" for https://host/team/distro.git: what the progress views call the repository. */
function repositoryName(url: string): string {
  const last = url.replace(/\/+$/, "").split("/").pop() ?? url;
  return `repository ${last.replace(/\.git$/, "") || url}`;
}

function lastCommit(refFile: string, url: string, branch: string | undefined): string {
  try {
    return (JSON.parse(readFileSync(refFile, "utf8")) as { commit: string }).commit;
  } catch {
    throw new CastleError("CASTLE_REPO_NOT_CACHED", `--offline: ${url}${branch ? `@${branch}` : ""} was never fetched`, {
      data: { url, branch },
      hint: "run once without --offline",
    });
  }
}
