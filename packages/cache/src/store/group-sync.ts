// Owns making staged trees durable before they are renamed into the store, with as few flushes
// as possible: commits that ask while a flush is already running share the next one (a group
// commit), so a batch of pulls or builds finishing together costs one or two flushes, not one
// each. A flush is syncfs(2) of the store's filesystem, done by castle-treeutil's helper (no fork
// of this process), else `sync -f`, else a global `sync`: never skipped.

import { spawn, spawnSync } from "node:child_process";
import { treeutilServer } from "./treeutil-serve";

export class GroupSync {
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;

  /** path: any path on the filesystem to flush (the store's tmp/); flush: how (tests count it). */
  constructor(private readonly path: string, private readonly flush: (path: string) => Promise<void> = syncFilesystem) {}

  /** Resolves once a flush that started after this call has finished. */
  sync(): Promise<void> {
    if (!this.running) {
      const run = this.flush(this.path).finally(() => {
        if (this.running === run) this.running = undefined;
      });
      this.running = run;
      return run;
    }
    // The flush in progress may have started before the caller's writes: wait for the next one.
    this.next ??= this.running.catch(() => {}).then(() => {
      this.next = undefined;
      return this.sync();
    });
    return this.next;
  }
}

/** Flushes the filesystem that holds path, without blocking the event loop. */
export async function syncFilesystem(path: string): Promise<void> {
  const server = await treeutilServer();
  if (server) {
    try {
      await server.syncfs(path);
      return;
    } catch {
      // Fall through to the programs.
    }
  }
  const ok = await new Promise<boolean>((resolve) => {
    const child = spawn("sync", ["-f", path], { stdio: "ignore" });
    child.on("error", () => resolve(false));
    child.on("exit", (code) => resolve(code === 0));
  });
  // `sync -f` needs coreutils ≥ 8.24; fall back to a global sync rather than skip durability.
  if (!ok) spawnSync("sync");
}
