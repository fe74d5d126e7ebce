// Owns the scheduler's errors: a layer whose build failed (with its log's path and tail), a layer
// not built because another failed first, blaming the layer whose own work failed, and failing
// only once sibling work has settled (nothing left running behind a reported failure).

import { CastleError, isCastleError, messageOf } from "@castle/errors";

export interface BuildFailure {
  logPath?: string;
  logTail: string[];
  exitCode?: number;
  /** The limit the build script ran into, when it most likely failed of one. */
  limit?: { limit: string; value?: number };
}

export class BuildFailedError extends CastleError {
  readonly logPath: string | undefined;
  readonly logTail: string[];
  readonly exitCode: number | undefined;

  constructor(layer: string, message: string, failure: BuildFailure, cause?: unknown) {
    super("CASTLE_BUILD_FAILED", `layer ${layer}: ${message}`, {
      layer,
      data: {
        ...(failure.exitCode === undefined ? {} : { exitCode: failure.exitCode }),
        ...(failure.logPath ? { logPath: failure.logPath } : {}),
        ...(failure.limit ? { limit: failure.limit } : {}),
      },
      cause,
      hint: failure.logPath ? `the full log is ${failure.logPath}` : undefined,
    });
    this.logPath = failure.logPath;
    this.logTail = failure.logTail;
    this.exitCode = failure.exitCode;
  }
}

/** The log of a failed build, when the error carries one (from any copy of this module). */
export function buildFailureOf(error: unknown): BuildFailure {
  const e = error as Partial<BuildFailedError>;
  return {
    logPath: typeof e.logPath === "string" ? e.logPath : undefined,
    logTail: Array.isArray(e.logTail) ? e.logTail : [],
  };
}

export class SkippedError extends CastleError {
  constructor(
    layer: string,
    readonly because: string,
  ) {
    super("CASTLE_BUILD_SKIPPED", `layer ${layer} was not built: ${because}`, { data: { because } });
  }
}

/** Attaches the layer whose own work failed to an error (once: the first layer to fail keeps it). */
export function blame(layer: string, error: unknown): CastleError {
  if (isCastleError(error)) {
    error.layer ??= layer;
    return error;
  }
  return new CastleError("CASTLE_BUILD_FAILED", `layer ${layer}: ${messageOf(error)}`, { cause: error, layer });
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
