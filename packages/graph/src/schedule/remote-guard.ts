// Owns talking to the remote cache during a build: every remote fault becomes a warning (and a
// local build), and a remote that is down is not asked again for the rest of the run.

import { isCastleError, messageOf } from "@castle/errors";
import type { Remote } from "@castle/cache";
import type { BuildEvent } from "../types";

/** Turns remote faults into one warning and stops asking a remote that is down. */
export class RemoteGuard {
  private broken = false;

  constructor(
    readonly remote: Remote | undefined,
    private readonly onEvent: (event: BuildEvent) => void,
  ) {}

  get usable(): boolean {
    return this.remote !== undefined && !this.broken;
  }

  /** Runs op against the remote; a fault becomes a warning and undefined. */
  async attempt<T>(layer: string | undefined, what: string, op: (remote: Remote) => Promise<T>): Promise<T | undefined> {
    if (!this.remote || this.broken) return undefined;
    try {
      return await op(this.remote);
    } catch (error) {
      const code = isCastleError(error) ? error.code : undefined;
      const fatal = code === "CASTLE_REMOTE_UNREACHABLE" || code === "CASTLE_REMOTE_TIMEOUT" || code === "CASTLE_REMOTE_AUTH";
      if (fatal) this.broken = true;
      this.onEvent({
        type: "warning",
        ...(layer ? { layer } : {}),
        code,
        message: `remote cache ${this.remote.url}: ${what} failed: ${messageOf(error)}${fatal ? " — not using it for the rest of this run" : "; building locally"}`,
      });
      return undefined;
    }
  }
}
