// Owns cross-process exclusive locks: a castle-treeutil child holds a kernel flock for as long as
// we keep its stdin open, so a lock dies with its holder (kill -9 included) and is never stale.

import { spawn } from "node:child_process";
import { CastleError } from "@castle/errors";
import { treeutilPath } from "./treeutil";

export interface HeldLock {
  release(): Promise<void>;
}

/** Waits until this process holds the exclusive lock on `file`. */
export function acquireLock(file: string): Promise<HeldLock> {
  const child = spawn(treeutilPath(), ["lock", file], { stdio: ["pipe", "pipe", "pipe"] });
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise<HeldLock>((resolve, reject) => {
    const onExit = (code: number | null) =>
      reject(
        new CastleError("CASTLE_CACHE_LOCK", `cannot lock ${file}`, {
          data: { file, code, stderr: stderr.trim() },
        }),
      );
    child.once("exit", onExit);
    child.once("error", (error) =>
      reject(new CastleError("CASTLE_CACHE_LOCK", `cannot lock ${file}`, { cause: error })),
    );
    child.stdout.once("data", () => {
      child.off("exit", onExit);
      resolve({
        release: async () => {
          child.stdin.end();
          await exited;
        },
      });
    });
  });
}

/** Runs fn while holding the lock on `file`. */
export async function withLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(file);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
