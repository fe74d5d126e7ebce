// Owns the build's view of its remote caches, whichever backend each is: import remotes are asked
// in order (the first that has a layer serves it; a refused or failed pull falls through to the
// next), every fault becomes a local build, and a remote that is down, too slow or refuses access
// is not asked again this run. The user hears about it once per remote and kind of failure, when
// the run ends ("s3://team-cache unreachable: built 9 layers locally (…)"), and once per import
// remote whether what was pulled is signed and by whom. Exports go through here too: a failure is
// one warning per remote, or with --strict-export the build's failure, with a hint saying so.

import { CastleError, isCastleError, messageOf } from "@castle/errors";
import { withHint, type KeyRecord, type LayerKey, type PullOptions, type Remote, type RemoteManifest, type Store } from "@castle/cache";
import type { BuildEvent } from "../types";

export interface RemoteGuardOptions {
  /** Remotes to pull from, in the order they are tried. */
  imports?: Remote | readonly Remote[];
  /** The remote to push to. */
  exportTo?: Remote;
  /** A failed export fails the build (the caller's business) instead of being a warning. */
  strictExport?: boolean;
  onEvent: (event: BuildEvent) => void;
}

export type PushOutcome =
  | { kind: "pushed"; uploadedBytes: number }
  | { kind: "skipped" }
  | { kind: "failed"; error: CastleError };

/** Faults after which a remote is not asked again this run. */
const FATAL = new Set(["CASTLE_REMOTE_UNREACHABLE", "CASTLE_REMOTE_TIMEOUT", "CASTLE_REMOTE_AUTH", "CASTLE_REMOTE_UNSUPPORTED"]);

/** One remote in one role: what went wrong with it and what it gave. */
interface RemoteState {
  readonly remote: Remote;
  readonly role: "import" | "export";
  /** The fault that stopped its use for this run. */
  broken?: CastleError;
  /** Failures by code: the first error and the layers it cost. */
  readonly failures: Map<string, { error: CastleError; layers: Set<string> }>;
  readonly pulled: { count: number; signers: Set<string>; unverified: Set<string>; unsigned: number };
}

export class RemoteGuard {
  private readonly imports: RemoteState[];
  private readonly exportState: RemoteState | undefined;
  /** Which import remote's manifest a layer's look-up found, by key. */
  private readonly found = new Map<LayerKey, RemoteState>();
  private readonly refusedLayers = new Set<string>();
  /** Layers some import remote delivered: a failure elsewhere did not cost their build. */
  private readonly pulledLayers = new Set<string>();

  constructor(private readonly options: RemoteGuardOptions) {
    const imports = options.imports === undefined ? [] : Array.isArray(options.imports) ? options.imports : [options.imports as Remote];
    this.imports = imports.map((remote) => newState(remote, "import"));
    this.exportState = options.exportTo && newState(options.exportTo, "export");
  }

  /** True while some import remote may still be asked. */
  get usable(): boolean {
    return this.imports.some((s) => !s.broken);
  }

  /** The first manifest an import remote has for key, or undefined (a fault counts as a miss). */
  lookup(layer: string, key: LayerKey): Promise<RemoteManifest | undefined> {
    return this.lookupFrom(layer, key, 0);
  }

  /**
   * Pulls key from the remote whose manifest the look-up found; when that fails, from the next
   * remote that has it. Undefined: build it locally.
   */
  async pull(layer: string, key: LayerKey, store: Store, options: PullOptions = {}): Promise<KeyRecord | undefined> {
    let state = this.found.get(key);
    let manifest = options.manifest;
    if (!state || !manifest) {
      manifest = await this.lookup(layer, key);
      state = this.found.get(key);
    }
    while (state && manifest) {
      if (state.broken) this.note(state, state.broken, layer);
      else {
        try {
          const record = await state.remote.pull(key, store, { ...options, manifest });
          if (record) {
            this.countPull(state, manifest);
            this.pulledLayers.add(layer);
            return record;
          }
        } catch (error) {
          // A cancelled build reports its cancellation; the remote did nothing wrong.
          if (options.signal?.aborted || (isCastleError(error) && error.code === "CASTLE_CANCELLED")) return undefined;
          if (isCastleError(error) && (error.code === "CASTLE_REMOTE_CORRUPT" || error.code === "CASTLE_REMOTE_UNTRUSTED")) this.refusedLayers.add(layer);
          this.fault(state, error, layer);
        }
      }
      manifest = await this.lookupFrom(layer, key, this.imports.indexOf(state) + 1);
      state = manifest ? this.found.get(key) : undefined;
    }
    return undefined;
  }

  /** True when a remote's copy of layer was refused (damaged, lying or untrusted) this run. */
  refused(layer: string): boolean {
    return this.refusedLayers.has(layer);
  }

  /** Exports a layer; a failure is remembered for the summary, or returned for --strict-export. */
  async push(layer: string, record: KeyRecord, store: Store): Promise<PushOutcome> {
    const state = this.exportState;
    if (!state) return { kind: "skipped" };
    if (state.broken) {
      if (this.options.strictExport) return { kind: "failed", error: this.strict(state.broken) };
      this.note(state, state.broken, layer);
      return { kind: "skipped" };
    }
    try {
      const result = await state.remote.push(record, store, { name: layer });
      return { kind: "pushed", uploadedBytes: result.uploadedBytes };
    } catch (error) {
      const failure = asCastle(error);
      if (this.options.strictExport) return { kind: "failed", error: this.strict(failure) };
      this.fault(state, failure, layer);
      return { kind: "skipped" };
    }
  }

  /** Emits the run's remote warnings and notes, once per remote and kind of failure. */
  finish(): void {
    const emit = this.options.onEvent;
    for (const state of [...this.imports, ...(this.exportState ? [this.exportState] : [])]) {
      for (const [code, { error, layers }] of state.failures) {
        const lost = state.role === "import" ? [...layers].filter((l) => !this.pulledLayers.has(l)) : [...layers];
        emit({ type: "warning", code, message: summary(state, code, error, lost, layers.size - lost.length) });
      }
      if (state.role === "import" && state.pulled.count > 0) emit(trustReport(state));
    }
  }

  private async lookupFrom(layer: string, key: LayerKey, start: number): Promise<RemoteManifest | undefined> {
    for (const state of this.imports.slice(start)) {
      if (state.broken) {
        this.note(state, state.broken, layer);
        continue;
      }
      try {
        const manifest = await state.remote.lookup(key);
        if (!manifest) continue;
        this.found.set(key, state);
        return manifest;
      } catch (error) {
        if (isCastleError(error) && (error.code === "CASTLE_REMOTE_CORRUPT" || error.code === "CASTLE_REMOTE_UNTRUSTED")) this.refusedLayers.add(layer);
        this.fault(state, error, layer);
      }
    }
    this.found.delete(key);
    return undefined;
  }

  private countPull(state: RemoteState, manifest: RemoteManifest): void {
    state.pulled.count++;
    const trust = manifest.trust;
    if (trust?.kind === "signed") state.pulled.signers.add(trust.by);
    else if (trust?.kind === "unverified") for (const s of trust.signers) state.pulled.unverified.add(s);
    else state.pulled.unsigned++;
  }

  private fault(state: RemoteState, error: unknown, layer: string): void {
    const failure = asCastle(error);
    if (FATAL.has(failure.code)) state.broken ??= failure;
    this.note(state, failure, layer);
  }

  private note(state: RemoteState, error: CastleError, layer: string): void {
    const entry = state.failures.get(error.code) ?? { error, layers: new Set<string>() };
    entry.layers.add(layer);
    state.failures.set(error.code, entry);
  }

  private strict(error: CastleError): CastleError {
    return withHint(error, "--strict-export makes a failed export fail the build; without it Castle warns and goes on");
  }
}

/** Once per import remote: whether what it gave is signed, and by whom. */
function trustReport(state: RemoteState): BuildEvent {
  const { count, signers, unverified, unsigned } = state.pulled;
  const pulled = `${state.remote.url}: ${count} layer${count === 1 ? "" : "s"} pulled`;
  if (unsigned > 0) {
    return {
      type: "warning", code: "CASTLE_REMOTE_UNSIGNED",
      message: `${pulled}, ${unsigned === count ? "none" : `${count - unsigned}`} signed — anyone who can write to it could have changed them; trust a key (--trusted-key, cache.trustedKeys) to require signatures`,
    };
  }
  if (unverified.size > 0) return { type: "note", message: `${pulled}, signed by ${[...unverified].join(", ")} but not verified: no trusted keys are configured` };
  return { type: "note", message: `${pulled}, signed by ${[...signers].join(", ")} (trusted)` };
}

function newState(remote: Remote, role: RemoteState["role"]): RemoteState {
  return { remote, role, failures: new Map(), pulled: { count: 0, signers: new Set(), unverified: new Set(), unsigned: 0 } };
}

function asCastle(error: unknown): CastleError {
  if (isCastleError(error)) return error as CastleError;
  return new CastleError("CASTLE_REMOTE_ERROR", messageOf(error), { cause: error });
}

const WHAT: Record<string, string> = {
  CASTLE_REMOTE_UNREACHABLE: "unreachable",
  CASTLE_REMOTE_TIMEOUT: "too slow",
  CASTLE_REMOTE_AUTH: "refused access",
  CASTLE_REMOTE_CORRUPT: "sent bad copies",
  CASTLE_REMOTE_UNTRUSTED: "offered untrusted manifests",
  CASTLE_REMOTE_UNSUPPORTED: "cannot be used that way",
  CASTLE_CACHE_NO_SPACE: "sent layers too large for the free space",
};

/**
 * "s3://team-cache unreachable: built 9 layers locally — cannot reach …": what the failure cost
 * (lost: layers built instead, or not exported; elsewhere: layers another remote delivered).
 */
function summary(state: RemoteState, code: string, error: CastleError, lost: string[], elsewhere: number): string {
  const count = (n: number) => `${n} layer${n === 1 ? "" : "s"}`;
  const which = lost.length > 0 && lost.length <= 4 ? ` (${[...lost].sort().join(", ")})` : "";
  const outcomes: string[] = [];
  if (state.role === "export") outcomes.push(`${count(lost.length)} not exported${which}`);
  else {
    if (lost.length > 0) outcomes.push(`built ${count(lost.length)} locally${which}`);
    if (elsewhere > 0) outcomes.push(`pulled ${count(elsewhere)} from the next remote instead`);
  }
  return `${state.remote.url} ${WHAT[code] ?? "failed"}: ${outcomes.join(", ")} — ${error.message}`;
}
