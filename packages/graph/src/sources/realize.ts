// Owns realizing a source: making its files a tree in the store, recorded under the source key
// (sha256 of its identity) so that the second time is one store lookup. Each kind writes into a
// staging dir that the store digests and commits atomically; the key lock serialises concurrent
// realizations of one source (threads or processes), and the store is checked again under it.

import { resolve } from "node:path";
import type { Staging, Store } from "@castle/cache";
import { isCastleError, messageOf } from "@castle/errors";
import type { Source } from "../types";
import type { SourceContext } from "./context";
import { SourceError, throwIfAborted } from "./errors";
import { defaultGitHttp, type GitHttp } from "./git-client";
import { fetchGitCommit } from "./git";
import { writeHttpTree } from "./http";
import { identityOf, sourceKey } from "./identity";
import { writeInlineFiles } from "./inline";
import { copyLocalEntries } from "./local";
import { digestLocalDir } from "./local-digest";
import { loadLastTree, saveLastTree } from "./stat-cache";
import { effectiveSource } from "./overrides";

/** Ensures the source's files are a tree in the store; returns its OutputDigest. */
export async function realizeSource(source: Source, ctx: SourceContext): Promise<string> {
  try {
    return await realize(source, ctx);
  } catch (error) {
    if (isCastleError(error)) throw error;
    throw new SourceError("CASTLE_SOURCE_IO", `${source.name}: cannot write the source into the store: ${messageOf(error)}`, {
      cause: error, data: { name: source.name },
    });
  }
}

async function realize(source: Source, ctx: SourceContext): Promise<string> {
  const used = effectiveSource(source, ctx.overrides).source;
  if (used.spec.type === "local") return realizeLocal(used, ctx);
  const key = sourceKey(identityOf(used, ctx));
  const hit = ctx.store.lookup(key);
  if (hit) return hit.digest;
  throwIfAborted(ctx.signal, `realizing ${source.name}`);
  return ctx.store.withKeyLock(key, async () => {
    const again = ctx.store.lookup(key);
    if (again) return again.digest;
    const started = Date.now();
    const staging = await ctx.store.stage(`source-${used.name}`);
    try {
      await writeTree(used, ctx, staging);
      report(ctx, source.name, "store");
      const record = await ctx.store.commit(staging, key, meta(used, started));
      report(ctx, source.name, "done", record.bytes);
      return record.digest;
    } finally {
      await staging.discard();
    }
  });
}

/**
 * Notes that `dir` holds a copy of the stored tree `digest` (e.g. `castle source --out dir`), so
 * that realizing `dir` later (as an override) links its unchanged files from that tree.
 */
export function rememberLocalTree(store: Store, dir: string, digest: string): void {
  saveLastTree(store.dir("stat-cache"), resolve(dir), digest);
}

/** A phase without byte counts of its own (storing, done), as a progress report. */
function report(ctx: SourceContext, source: string, phase: "store" | "done" | "unpack", bytes?: number): void {
  ctx.onProgress?.({ source, phase, bytesDone: bytes ?? 0, ...(bytes === undefined ? {} : { bytesTotal: bytes }) });
}

async function writeTree(source: Source, ctx: SourceContext, staging: Staging): Promise<void> {
  const spec = source.spec;
  switch (spec.type) {
    case "http":
      return writeHttpTree(source.name, spec, ctx, staging.tree);
    case "inline":
      return writeInlineFiles(spec.files, staging.tree);
    case "git": {
      const { default: fs } = await import("node:fs");
      const http = (ctx.gitHttp as GitHttp | undefined) ?? (await defaultGitHttp());
      const checkout = await fetchGitCommit({
        url: spec.url, commit: spec.commit, fs, http, cacheDir: ctx.store.dir("git"),
        ...(spec.ref ? { ref: spec.ref } : {}),
        ...(ctx.signal ? { signal: ctx.signal } : {}),
        ...(ctx.timeoutMs ? { timeoutMs: ctx.timeoutMs } : {}),
        onBytes: (received) => ctx.onProgress?.({ source: source.name, phase: "clone", bytesDone: received }),
      });
      report(ctx, source.name, "unpack");
      await checkout.writeTree(staging.tree, spec.subdir);
      return;
    }
    default:
      throw new Error(`cannot stage a ${spec.type} source here`);
  }
}

/**
 * A local directory: digest it (stat cache), and copy it only when the store lacks that digest.
 * A change during the copy fails the digest check; we hash everything again and retry once.
 */
async function realizeLocal(source: Source, ctx: SourceContext): Promise<string> {
  const spec = source.spec as Extract<Source["spec"], { type: "local" }>;
  const statCacheDir = ctx.store.dir("stat-cache");
  let lastError: unknown;
  for (let attempt = 0; attempt < 2; attempt++) {
    throwIfAborted(ctx.signal, `realizing ${source.name}`);
    const local = digestLocalDir(spec.dir, {
      ignore: spec.ignore, statCacheDir, rehashAll: attempt > 0, ...(ctx.onLocalWalk ? { onWalk: ctx.onLocalWalk } : {}),
    });
    const key = sourceKey(`local:${local.digest}`);
    const hit = ctx.store.lookup(key);
    if (hit) {
      saveLastTree(statCacheDir, spec.dir, hit.digest);
      return hit.digest;
    }
    // The tree last made from this directory: its unchanged files are linked, not copied (not
    // on a second attempt, after a file changed while it was being copied).
    const previous = attempt === 0 ? loadLastTree(statCacheDir, spec.dir) : undefined;
    const reuse = previous && ctx.store.hasTree(previous) ? ctx.store.treePath(previous) : undefined;
    try {
      return await ctx.store.withKeyLock(key, async () => {
        const again = ctx.store.lookup(key);
        if (again) return again.digest;
        const started = Date.now();
        if (ctx.store.hasTree(local.digest)) {
          saveLastTree(statCacheDir, spec.dir, local.digest);
          return ctx.store.link(key, local.digest, meta(source, started)).digest;
        }
        const staging = await ctx.store.stage(`source-${source.name}`);
        try {
          await copyLocalEntries(spec.dir, local.entries, staging.tree, (bytesDone, bytesTotal) =>
            ctx.onProgress?.({ source: source.name, phase: "copy", bytesDone, bytesTotal }), reuse);
          report(ctx, source.name, "store");
          const record = await ctx.store.commit(staging, key, { ...meta(source, started), expectDigest: local.digest });
          saveLastTree(statCacheDir, spec.dir, record.digest);
          report(ctx, source.name, "done", record.bytes);
          return record.digest;
        } finally {
          await staging.discard();
        }
      });
    } catch (error) {
      if (!changedDuringCopy(error)) throw error;
      lastError = error;
    }
  }
  throw new SourceError(
    "CASTLE_SOURCE_CHANGED",
    `${source.name}: ${spec.dir} kept changing while it was copied into the store; wait for writes to it to finish and run again`,
    { cause: lastError, data: { name: source.name, dir: spec.dir } },
  );
}

/** A digest mismatch at commit, or a file that vanished or appeared between the walk and the copy. */
function changedDuringCopy(error: unknown): boolean {
  if (isCastleError(error)) return error.code === "CASTLE_DIGEST_MISMATCH";
  const code = (error as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "EEXIST" || code === "ENOTDIR";
}

function meta(source: Source, started: number) {
  return { name: `source:${source.name}`, buildMs: Date.now() - started, origin: "built" as const };
}
