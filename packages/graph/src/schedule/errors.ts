// Owns the scheduler's errors: a layer whose build failed, a layer not built because another
// failed first, blaming the layer whose own work failed, and failing only once sibling work has
// settled (nothing left running behind a reported failure).

import { CastleError, isCastleError, messageOf } from "@castle/errors";

export class BuildFailedError extends CastleError {
  constructor(layer: string, message: string, data: { logPath?: string; logTail: string[]; exitCode?: number }, cause?: unknown) {
    super("CASTLE_BUILD_FAILED", `layer ${layer}: ${message}`, {
      data: { layer, ...data },
      cause,
      hint: data.logPath ? `the full log is ${data.logPath}` : undefined,
    });
  }
}

export class SkippedError extends CastleError {
  constructor(layer: string, because: string) {
    super("CASTLE_BUILD_SKIPPED", `layer ${layer} was not built: ${because}`, { data: { layer, because } });
  }
}

/** Attaches the layer whose own work failed to an error (once: the first layer to fail keeps it). */
export function blame(layer: string, error: unknown): CastleError {
  if (error instanceof CastleError || isCastleError(error)) {
    if (error.data.layer === undefined) (error.data as Record<string, unknown>).layer = layer;
    return error;
  }
  return new CastleError("CASTLE_BUILD_FAILED", `layer ${layer}: ${messageOf(error)}`, { cause: error, data: { layer } });
}

/** Runs a layer's own work (not its dependencies'), blaming that layer for what fails. */
export async function ownWork<T>(layer: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw blame(layer, error);
  }
}

/** Like Promise.all, but fails only once every task has settled: a failure never leaves sibling
 * work (a source half-written to the store's staging) running after the build has ended. */
export async function allFinished<T>(tasks: Array<Promise<T>>): Promise<T[]> {
  const settled = await Promise.allSettled(tasks);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<T>).value);
}
