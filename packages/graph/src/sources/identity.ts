// Owns a source's identity, the cheap string a layer key uses for it: the pin for http and git
// sources (no network), the content digest for local and inline ones. No host path ever goes
// into an identity, so keys agree across machines. The source key is the sha256 of the identity.

import { createHash } from "node:crypto";
import type { Source } from "../types";
import type { SourceContext, SourceIdentity } from "./context";
import { fileName } from "./http";
import { inlineDigest } from "./inline";
import { digestLocalDir, type LocalDigestOptions } from "./local-digest";
import { effectiveSource } from "./overrides";

/** Cheap identity used in layer keys: no download for pinned sources. */
export async function sourceIdentity(source: Source, ctx: SourceContext): Promise<SourceIdentity> {
  const { source: used, overriddenBy } = effectiveSource(source, ctx.overrides);
  const id = identityOf(used, ctx);
  return { name: source.name, id, ...(overriddenBy === undefined ? {} : { overriddenBy }) };
}

/** The identity string of a source that is not overridden. */
export function identityOf(source: Source, ctx: SourceContext, local: Partial<LocalDigestOptions> = {}): string {
  const spec = source.spec;
  switch (spec.type) {
    case "http":
      // A file that is not unpacked is stored under its name, so the name is part of what it is.
      return spec.extract
        ? `http:${spec.sha256}:x1:s${spec.strip}`
        : `http:${spec.sha256}:x0:s${spec.strip}:${encodeURIComponent(fileName(spec.url))}`;
    case "git":
      return `git:${spec.commit}:${spec.subdir}`;
    case "inline":
      return `inline:${inlineDigest(spec.files)}`;
    case "local":
      return `local:${digestLocalDir(spec.dir, {
        ignore: spec.ignore, statCacheDir: ctx.store.dir("stat-cache"), ...(ctx.onLocalWalk ? { onWalk: ctx.onLocalWalk } : {}), ...local,
      }).digest}`;
    default:
      throw new Error(`unknown source type ${JSON.stringify(spec)}`);
  }
}

/** The store key a source's tree is recorded under: sha256 of its identity. */
export function sourceKey(id: string): string {
  return createHash("sha256").update(id).digest("hex");
}
