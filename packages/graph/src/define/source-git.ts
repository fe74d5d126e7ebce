// Owns `source.git()`: a tree from a git repository, pinned to a commit, fetched with isomorphic-git.

import { SOURCE_BRAND, type Source } from "../types";
import { checkKnownOptions, checkName, optionNames } from "./checks";
import { DefinitionError } from "./errors";
import { captureSite, withSite } from "./site";

export interface GitSourceOptions {
  /** Repository URL (http(s) smart protocol) or a local path. */
  url: string;
  /** The full 40-hex commit whose tree is the source. */
  commit: string;
  /** Branch or tag to fetch to find the commit. Default: the remote's HEAD. */
  ref?: string;
  /** Only this directory of the tree. Default: the whole tree. */
  subdir?: string;
  /** Name for overrides. Default: the repository name. */
  name?: string;
}

/**
 * The tree of one commit of a git repository (submodules are not fetched).
 *
 * @example
 * const app = source.git({ url: "https://example.org/app.git", ref: "main",
 *   commit: "0123456789abcdef0123456789abcdef01234567" });
 */
const GIT_OPTIONS = optionNames<GitSourceOptions>()(["url", "commit", "ref", "subdir", "name"]);

export function gitSource(options: GitSourceOptions): Source {
  const site = captureSite();
  checkKnownOptions(options, GIT_OPTIONS, "source.git", site);
  if (typeof options?.url !== "string" || options.url === "") {
    throw new DefinitionError("source.git: url must be a non-empty string", site);
  }
  const commit = String(options.commit ?? "").toLowerCase();
  if (!/^[0-9a-f]{40}$/.test(commit)) {
    throw new DefinitionError(`source.git ${options.url}: commit must be a full 40-hex commit id`, site);
  }
  const subdir = (options.subdir ?? "").replace(/^\/+|\/+$/g, "");
  if (subdir.split("/").includes("..")) {
    throw new DefinitionError(`source.git ${options.url}: subdir must stay inside the repository`, site);
  }
  const repoName = options.url.replace(/\/+$/, "").split(/[/:]/).pop()?.replace(/\.git$/, "") || "git";
  return withSite({
    [SOURCE_BRAND]: true as const,
    name: checkName(options.name ?? repoName, "source", site),
    spec: { type: "git" as const, url: options.url, commit, ...(options.ref ? { ref: options.ref } : {}), subdir },
  }, site);
}
