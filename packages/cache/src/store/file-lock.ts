// Owns cross-process locks: kernel flocks held outside Node (which cannot flock), so a lock dies
// with its holder (kill -9 included) and is never stale. This process's castle-treeutil serve
// helper holds them when it runs (no fork of Node per lock); otherwise a castle-treeutil lock
// child holds one for as long as we keep its stdin open.

import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { CastleError } from "@castle/errors";
import { treeutilPath } from "./treeutil";
import { treeutilServer } from "./treeutil-serve";

export interface HeldLock {
  release(): Promise<void>;
}

export interface LockOptions {
  /** Many shared holders may hold the lock at once, but none while an exclusive holder does. */
  shared?: boolean;
  /** Called once if the lock is not ours within waitNoticeMs (to tell a user why nothing happens). */
  onWait?: () => void;
  waitNoticeMs?: number;
}

/** Exclusive holders and waiters in this process, per lock file: the last one's turn. */
const turns = new Map<string, Promise<void>>();

/**
 * Waits until this process holds the lock on `file` (exclusive unless options.shared). Exclusive
 * requests from this process queue here first, in call order: the kernel grants a contended
 * flock in no particular order, and the helper waits for each request on its own thread.
 */
export async function acquireLock(file: string, options: LockOptions = {}): Promise<HeldLock> {
  if (options.shared) return takeLock(file, options);
  const key = resolve(file);
  const previous = turns.get(key) ?? Promise.resolve();
  let endTurn!: () => void;
  const turn = previous.then(() => new Promise<void>((done) => (endTurn = done)));
  turns.set(key, turn);
  const finish = () => {
    endTurn();
    if (turns.get(key) === turn) turns.delete(key);
  };
  await previous;
  try {
    // The notice (if any) covers the wait for other processes, not for earlier holders here.
    const held = await takeLock(file, options);
    return {
      release: async () => {
        await held.release();
        finish();
      },
    };
  } catch (error) {
    finish();
    throw error;
  }
}

async function takeLock(file: string, options: LockOptions): Promise<HeldLock> {
  const server = await treeutilServer();
  if (!server) return lockInChild(file, options);
  const notice = options.onWait ? setTimeout(options.onWait, options.waitNoticeMs ?? 200) : undefined;
  try {
    const handle = await server.lock(file, Boolean(options.shared));
    // A helper that died has dropped the lock with it: releasing then has nothing left to do.
    return { release: () => server.unlock(handle).catch(() => undefined) };
  } catch (error) {
    throw new CastleError("CASTLE_CACHE_LOCK", `cannot lock ${file}`, { cause: error, data: { file } });
  } finally {
    clearTimeout(notice);
  }
}

function lockInChild(file: string, options: LockOptions): Promise<HeldLock> {
  const child = spawn(treeutilPath(), [options.shared ? "lock-shared" : "lock", file], { stdio: ["pipe", "pipe", "pipe"] });
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const notice = options.onWait ? setTimeout(options.onWait, options.waitNoticeMs ?? 200) : undefined;
  return new Promise<HeldLock>((resolve, reject) => {
    const onExit = (code: number | null) => {
      clearTimeout(notice);
      reject(
        new CastleError("CASTLE_CACHE_LOCK", `cannot lock ${file}`, {
          data: { file, code, stderr: stderr.trim() },
        }),
      );
    };
    child.once("exit", onExit);
    child.once("error", (error) => {
      clearTimeout(notice);
      reject(new CastleError("CASTLE_CACHE_LOCK", `cannot lock ${file}`, { cause: error }));
    });
    child.stdout.once("data", () => {
      clearTimeout(notice);
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
export async function withLock<T>(file: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const lock = await acquireLock(file, options);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
