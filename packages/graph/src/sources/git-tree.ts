// Owns writing one commit's tree (or a subdirectory of it) from a git object database into a
// directory: files with their modes (100644, 100755), symlinks (120000) verbatim, directories
// 0755; submodules (160000) are skipped, as `source.git` documents.

import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SourceError } from "./errors";
import type { Git, GitFs } from "./git-client";

export interface WriteGitTreeRequest {
  git: Git;
  fs: GitFs;
  gitdir: string;
  commit: string;
  /** "" for the whole tree. */
  subdir: string;
  /** An existing, empty directory. */
  dest: string;
  /** isomorphic-git's object cache, shared across calls on one repository. */
  cache?: object;
  url: string;
}

/** Writes the tree and returns how many files it wrote. */
export async function writeGitTree(req: WriteGitTreeRequest): Promise<number> {
  const { git, fs, gitdir } = req;
  const cache = req.cache ?? {};
  let root: Awaited<ReturnType<Git["readTree"]>>;
  try {
    root = await git.readTree({ fs, gitdir, oid: req.commit, cache, ...(req.subdir ? { filepath: req.subdir } : {}) });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (req.subdir && (code === "NotFoundError" || code === "ObjectTypeError")) {
      throw new SourceError(
        "CASTLE_GIT_SUBDIR_MISSING",
        `${req.url} at ${req.commit} has no directory ${req.subdir}`,
        { cause: error, data: { url: req.url, commit: req.commit, subdir: req.subdir } },
      );
    }
    throw error;
  }
  let files = 0;
  const write = async (entries: typeof root.tree, dir: string) => {
    for (const entry of entries) {
      if (entry.path === "" || entry.path === "." || entry.path === ".." || /[/\0]/.test(entry.path)) {
        throw new SourceError("CASTLE_SOURCE_INVALID", `${req.url}: the tree holds an unsafe name ${JSON.stringify(entry.path)}`, {
          data: { url: req.url, commit: req.commit, name: entry.path },
        });
      }
      const target = join(dir, entry.path);
      if (entry.type === "tree") {
        mkdirSync(target, { mode: 0o755 });
        chmodSync(target, 0o755);
        const sub = await git.readTree({ fs, gitdir, oid: entry.oid, cache });
        await write(sub.tree, target);
      } else if (entry.type === "blob") {
        const { blob } = await git.readBlob({ fs, gitdir, oid: entry.oid, cache });
        if (entry.mode === "120000") {
          symlinkSync(Buffer.from(blob).toString("utf8"), target);
        } else {
          const mode = entry.mode === "100755" ? 0o755 : 0o644;
          writeFileSync(target, blob, { mode });
          chmodSync(target, mode);
          files++;
        }
      }
      // type "commit" (mode 160000) is a submodule: not fetched.
    }
  };
  await write(root.tree, req.dest);
  return files;
}
