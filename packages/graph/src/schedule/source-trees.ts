// Owns the trees of the sources a build mounts or imports: each realized once per run (fetched,
// verified, unpacked into the store), a few at a time, and checked against the identity its
// layers' keys were computed with.

import PQueue from "p-queue";
import { CastleError } from "@castle/errors";
import type { OutputDigest } from "@castle/cache";
import { realizeSource, type SourceContext } from "../sources";
import type { Source } from "../types";

export class SourceTrees {
  private readonly trees = new Map<string, Promise<OutputDigest>>();
  /** Sources realized at once: a layer may mount a hundred pinned files, and a hundred parallel
   * connections (and DNS look-ups) make mirrors and resolvers time out. */
  private readonly fetches = new PQueue({ concurrency: 6 });

  constructor(
    private readonly context: SourceContext,
    /** The identity the source had when keys were computed. */
    private readonly keyedId: (name: string) => string | undefined,
  ) {}

  /** The digest of a source's tree in the store, realizing it first if needed. */
  tree(source: Source): Promise<OutputDigest> {
    let pending = this.trees.get(source.name);
    if (!pending) {
      pending = this.fetches.add(() => realizeSource(source, this.context)).then((digest) => this.checkUnchanged(source.name, digest));
      this.trees.set(source.name, pending);
    }
    return pending;
  }

  /**
   * A local directory is keyed by its content: if it changed since the keys were computed,
   * building with it would store an output under a key that does not describe it.
   */
  private checkUnchanged(name: string, digest: OutputDigest): OutputDigest {
    const id = this.keyedId(name);
    if (id?.startsWith("local:") && id !== `local:${digest}`) {
      throw new CastleError("CASTLE_SOURCE_CHANGED", `source ${name} changed while Castle was building; run the build again`, {
        data: { source: name, expected: id, actual: `local:${digest}` },
      });
    }
    return digest;
  }
}
