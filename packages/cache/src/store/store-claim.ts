// Owns a build's claim on the store against `cache prune`, and the one protocol every build
// follows under it (StoreClaim.run): pass over the graph, record the system's root, and pass again
// under the lock when a prune overtook the first pass. Taken optimistically: a build that finds
// everything cached writes nothing but its root, so it takes no lock — it notes the prune
// generation before its first look-up and, once its root is written, checks that no prune ran
// meanwhile. A pass about to write (build, pull or import a layer) takes the store's lock shared
// first (WriteGuard.beforeWrite); if a prune ran since the first look-up, what the pass found may
// be gone, so the pass is abandoned and run again, under the lock.

import { CastleError } from "@castle/errors";
import type { KeyRecord, StoreClaim, WriteGuard } from "../types";
import type { HeldLock } from "./file-lock";
import type { LocalStore } from "./local-store";
import { pruneGeneration, useStore } from "./prune";
import { recordRoot } from "./roots";

export class LocalStoreClaim implements StoreClaim {
  private readonly generation: number;
  private held?: Promise<HeldLock>;

  constructor(
    private readonly store: LocalStore,
    private readonly onWait?: () => void,
  ) {
    this.generation = pruneGeneration(store);
    // A prune is running (or one died): wait for it, as a build holding the lock would.
    if (!this.optimistic) void this.hold().catch(() => undefined);
  }

  /** False when a prune was running as the claim began: the build must hold the lock throughout. */
  get optimistic(): boolean {
    return this.generation % 2 === 0;
  }

  /** Takes the store's lock shared (once); a running prune is waited for. */
  hold(): Promise<HeldLock> {
    return (this.held ??= useStore(this.store, this.onWait));
  }

  /**
   * True when no prune has started since the claim began: what the build found is still there.
   * Asked once the root is written (a prune starting later keeps what the root names), or once
   * the lock is held (no prune can start any more). False means: look everything up again.
   */
  unpruned(): boolean {
    return this.optimistic && pruneGeneration(this.store) === this.generation;
  }

  async run<T extends { used: KeyRecord[] }>(system: string, pass: (guard: WriteGuard) => Promise<T>): Promise<T> {
    try {
      if (!this.optimistic) await this.hold();
      let { outcome, locked } = await this.pass(pass, this.optimistic);
      recordRoot(this.store, system, outcome.used);
      if (!locked && !this.unpruned()) {
        // Found everything without the lock, but a prune started before the root was written.
        await this.hold();
        ({ outcome } = await this.pass(pass, false));
        recordRoot(this.store, system, outcome.used);
      }
      return outcome;
    } finally {
      await this.release();
    }
  }

  /** One pass; an optimistic one that a prune overtook is run again under the lock. `locked`:
   * the pass that gave the outcome held the lock from its first write on (or before). */
  private async pass<T>(pass: (guard: WriteGuard) => Promise<T>, optimistic: boolean): Promise<{ outcome: T; locked: boolean }> {
    const guard = { overtaken: false, locked: !optimistic, beforeWrite: () => Promise.resolve() };
    if (optimistic) {
      guard.beforeWrite = async () => {
        await this.hold();
        if (this.unpruned()) {
          guard.locked = true;
          return;
        }
        guard.overtaken = true;
        throw new CastleError("CASTLE_STORE_PRUNED", "a cache prune ran while this build looked up its layers");
      };
    }
    try {
      const outcome = await pass(guard);
      return { outcome, locked: guard.locked };
    } catch (error) {
      if (!guard.overtaken) throw error;
      return this.pass(pass, false);
    }
  }

  async release(): Promise<void> {
    if (this.held) await (await this.held).release();
  }
}
