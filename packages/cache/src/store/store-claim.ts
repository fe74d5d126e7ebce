// Owns a build's claim on the store against `cache prune`, taken optimistically: a build that
// finds everything cached writes nothing but its root, so it takes no lock — it notes the prune
// generation before its first look-up and, once its root is written, checks that no prune ran
// meanwhile. A build that is about to write (build, pull or import a layer), or that saw a prune,
// takes the store's lock shared, as every build used to; if a prune ran since the first look-up,
// the build looks everything up again, under the lock.

import type { HeldLock } from "./file-lock";
import type { LocalStore } from "./local-store";
import { pruneGeneration, useStore } from "./prune";

export class StoreClaim {
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

  async release(): Promise<void> {
    if (this.held) await (await this.held).release();
  }
}
