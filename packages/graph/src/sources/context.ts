// Owns the nouns of the sources module: what a caller passes in (SourceContext: the store,
// overrides, environment and injected clients) and what it gets back for keys (SourceIdentity).

import type { Store } from "@castle/cache";
import type { FileRead } from "../load/record/stat-identity";
import type { SourcePhase } from "../types";

export type { SourcePhase };

export interface SourceProgress {
  source: string;
  bytesDone: number;
  bytesTotal?: number;
  phase: SourcePhase;
}

export interface SourceContext {
  /** The local store: trees, records, downloads/, git/ and stat-cache/ live in it. */
  store: Store;
  /** Normalised source name → absolute local dir (see parseOverrides). */
  overrides: Map<string, string>;
  /** Read for CASTLE_MIRRORS. */
  env: NodeJS.ProcessEnv;
  /** HTTP client for http sources. Default: the global fetch. */
  fetch?: typeof globalThis.fetch;
  /** isomorphic-git HTTP client. Default: isomorphic-git/http/node. */
  gitHttp?: unknown;
  onProgress?: (progress: SourceProgress) => void;
  signal?: AbortSignal;
  /** Give up on an http URL when no response or no byte arrives for this long. Default 30 000. */
  timeoutMs?: number;
  /** Told what each digest of a local directory stat'ed (see LocalDigestOptions.onWalk). */
  onLocalWalk?: (reads: FileRead[]) => void;
}

/** What a layer key uses for a source: a pin (http, git), or a content digest (local, inline). */
export interface SourceIdentity {
  name: string;
  /** e.g. "http:<sha256>:x1:s1", "git:<commit>:<subdir>", "local:<digest>", "inline:<sha256>". */
  id: string;
  /** The local directory that replaced the source (CASTLE_OVERRIDE_<name>), when overridden. */
  overriddenBy?: string;
}
