// Owns moving many keys at once, as the scheduler and `castle cache push|pull` do: bounded
// parallelism (p-queue), byte progress per key, and the failure policy — a remote fault is a
// warning (the remote is only a cache) unless `strict` asks for it to be thrown. Pushes upload
// blobs in parallel but publish manifests strictly in the given order (dependencies first), so a
// reader never sees a layer's manifest before those of the layers listed before it.

import PQueue from "p-queue";
import { CastleError, isCastleError } from "@castle/errors";
import type { KeyRecord, LayerKey, Store, TransferProgress } from "../types";
import type { CacheRemote } from "./cache-remote";

export interface SyncOptions {
  /** Transfers at once. Default 4. */
  concurrency?: number;
  onProgress?: (progress: TransferProgress) => void;
  /** Throw the first failure (after the others finished) instead of collecting warnings. Default false. */
  strict?: boolean;
  signal?: AbortSignal;
}

export interface PushOutcome {
  key: LayerKey;
  name: string;
  status: "uploaded" | "skipped" | "failed";
  uploadedBytes: number;
  error?: CastleError;
}

export interface PullOutcome {
  key: LayerKey;
  name: string;
  status: "pulled" | "present" | "missing" | "failed";
  record?: KeyRecord;
  error?: CastleError;
}

export interface SyncReport<T> {
  outcomes: T[];
  /** The failures, one CastleError each, for the caller to print as warnings. */
  warnings: CastleError[];
  /** Blob bytes moved over the network. */
  bytes: number;
}

/** Pushes records in the given order (dependencies first). Never throws unless strict. */
export async function pushKeys(remote: CacheRemote, store: Store, records: KeyRecord[], options: SyncOptions = {}): Promise<SyncReport<PushOutcome>> {
  const queue = new PQueue({ concurrency: options.concurrency ?? 4 });
  const outcomes: PushOutcome[] = records.map((r) => ({ key: r.key, name: r.name, status: "failed", uploadedBytes: 0 }));
  const prepared = records.map((record) => {
    const task = queue.add(() => remote.preparePush(record, store, { name: record.name, onProgress: options.onProgress, signal: options.signal }));
    task.catch(() => {}); // Handled in order below; not an unhandled rejection meanwhile.
    return task;
  });
  for (const [i, pending] of prepared.entries()) {
    const outcome = outcomes[i] as PushOutcome;
    try {
      const result = await pending;
      if (!result) continue;
      outcome.uploadedBytes = result.uploadedBytes;
      if (result.manifest) await remote.writeManifest(result.manifest, options.signal);
      outcome.status = result.manifest ? "uploaded" : "skipped";
    } catch (error) {
      outcome.error = asCastleError(error, `pushing ${outcome.name || outcome.key}`);
    }
  }
  return finish(outcomes, options.strict, outcomes.reduce((sum, o) => sum + o.uploadedBytes, 0));
}

/** Pulls keys that are not in the store yet. Never throws unless strict. */
export async function pullKeys(
  remote: CacheRemote, store: Store, keys: Array<LayerKey | { key: LayerKey; name?: string }>, options: SyncOptions = {},
): Promise<SyncReport<PullOutcome>> {
  const queue = new PQueue({ concurrency: options.concurrency ?? 4 });
  let bytes = 0;
  const outcomes = await Promise.all(
    keys.map((entry) => {
      const { key, name = "" } = typeof entry === "string" ? { key: entry } : entry;
      return queue.add(async (): Promise<PullOutcome> => {
        const present = store.lookup(key);
        if (present) return { key, name: name || present.name, status: "present", record: present };
        try {
          let done = 0;
          const record = await remote.pull(key, store, {
            name: name || undefined,
            signal: options.signal,
            onProgress: (progress) => {
              done = progress.bytesDone;
              options.onProgress?.(progress);
            },
          });
          bytes += done;
          return record ? { key, name: record.name, status: "pulled", record } : { key, name, status: "missing" };
        } catch (error) {
          return { key, name, status: "failed", error: asCastleError(error, `pulling ${name || key}`) };
        }
      }) as Promise<PullOutcome>;
    }),
  );
  return finish(outcomes, options.strict, bytes);
}

function finish<T extends { error?: CastleError }>(outcomes: T[], strict: boolean | undefined, bytes: number): SyncReport<T> {
  const warnings = outcomes.flatMap((o) => (o.error ? [o.error] : []));
  if (strict && warnings[0]) throw warnings[0];
  return { outcomes, warnings, bytes };
}

function asCastleError(error: unknown, action: string): CastleError {
  if (isCastleError(error)) return error as CastleError;
  return new CastleError("CASTLE_REMOTE_ERROR", `${action} failed: ${(error as Error)?.message ?? String(error)}`, { cause: error });
}
