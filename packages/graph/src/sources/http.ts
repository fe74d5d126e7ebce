// Owns turning an http source into a staged tree: download the pinned file (mirrors first, see
// mirrors.ts and http-fetch.ts), then unpack it (extract.ts) or place it as <basename>.

import { chmodSync, copyFileSync, constants, statSync } from "node:fs";
import { join } from "node:path";
import type { SourceSpec } from "../types";
import type { SourceContext } from "./context";
import { extractArchive } from "./extract";
import { downloadVerified } from "./http-fetch";
import { candidateUrls } from "./mirrors";

export type HttpSpec = Extract<SourceSpec, { type: "http" }>;

const DEFAULT_TIMEOUT_MS = 30_000;

/** The verified file downloads/<sha256>, downloaded if needed. */
export function fetchHttpFile(name: string, spec: HttpSpec, ctx: SourceContext): Promise<string> {
  return downloadVerified({
    name,
    sha256: spec.sha256,
    urls: candidateUrls(spec, ctx.env),
    downloadsDir: ctx.store.dir("downloads"),
    tmpDir: ctx.store.dir("tmp"),
    fetch: ctx.fetch ?? globalThis.fetch,
    timeoutMs: ctx.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    onProgress: (bytesDone, bytesTotal) =>
      ctx.onProgress?.({ source: name, phase: "download", bytesDone, ...(bytesTotal === undefined ? {} : { bytesTotal }) }),
  });
}

/** Writes the source's tree into dest (an empty staging tree). */
export async function writeHttpTree(name: string, spec: HttpSpec, ctx: SourceContext, dest: string): Promise<void> {
  const file = await fetchHttpFile(name, spec, ctx);
  const size = statSync(file).size;
  const unpacked = (bytesDone: number, bytesTotal: number) => ctx.onProgress?.({ source: name, phase: "unpack", bytesDone, bytesTotal });
  unpacked(0, size);
  if (spec.extract) {
    await extractArchive({
      name, file, dest, strip: spec.strip, env: ctx.env, onProgress: unpacked, ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
  } else {
    const target = join(dest, fileName(spec.url));
    copyFileSync(file, target, constants.COPYFILE_FICLONE);
    chmodSync(target, 0o644);
  }
  unpacked(size, size);
}

/** The last path component of a URL, decoded: the name a non-archive file gets in its tree. */
export function fileName(url: string): string {
  const last = new URL(url).pathname.split("/").pop() ?? "";
  let name = last;
  try {
    name = decodeURIComponent(last);
  } catch {
    // Keep the raw name.
  }
  return name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0") ? "download" : name;
}
