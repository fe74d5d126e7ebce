// Owns the registry of running instances ($XDG_STATE_HOME/castle/instances/<id>.json): what
// `castle ps`, `exec` and `kill` see. An entry whose process is gone (or whose pid was reused)
// is stale and is removed when seen, and so is an entry left half-written by a killed castle.
//
// It also owns the rule "one persistent instance per system": a persistent run claims its
// system's slot, slots/<system> beside instances/, before it touches the system's upper dir. The
// claim is one atomic step — the slot appears complete by link(2), which fails if it exists — so
// of runs started together exactly one wins and the others are refused, every time. A slot whose
// castle and sandbox are both gone (kill -9) is stale: it is removed under a kernel lock on
// slots/<system>.lock, after reading it again, so only a stale slot is ever removed, and once.

import { linkSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { acquireLock, processLives, processStart, writeFileAtomic } from "@castle/cache/store";
import { CastleError } from "@castle/errors";
import type { SandboxSpec } from "@castle/sandbox";
import { ensureDir } from "./paths";

export interface Instance {
  id: string;
  system: string;
  /** Host pid of the sandbox helper (signals sent to it reach the command). */
  pid: number;
  /** Host pid of the sandbox's init: its /proc/<pid>/ns/* are the instance's namespaces. */
  initPid: number;
  /** Start time of pid in clock ticks since boot, to tell a reused pid. */
  pidStart: number;
  command: string[];
  startedAt: string;
  definition: string;
  /** What `castle exec` gives a command it runs inside: the instance's environment and working
   * directory, and the limits it runs under. Absent in entries written before exec existed. */
  env?: Record<string, string>;
  cwd?: string;
  rlimits?: SandboxSpec["rlimits"];
  cgroups?: string[];
  /** With Castle inside: its edits file (a path this Castle can read) and where its mounts live
   * on the outermost host, so `castle ps` can say where the edited sources are. */
  inside?: { edits: string; hostPaths: Record<string, string> };
}

/** A persistent run's hold on its system (see above). */
export interface SystemClaim {
  /** Names the sandbox too: the slot stays taken until both castle and its sandbox are gone. */
  started(sandboxPid: number): void;
  release(): void;
}

interface SlotOwner {
  id: string;
  pid: number;
  pidStart: number;
  sandboxPid?: number;
  sandboxStart?: number;
}

export class InstanceRegistry {
  private readonly dir: string;

  constructor(private readonly stateDir: string) {
    this.dir = ensureDir(join(stateDir, "instances"), "state");
  }

  /** Where instance entries live (the fast path registers its own there, see fastpath/). */
  get directory(): string {
    return this.dir;
  }

  newId(system: string): string {
    // A name, not a secret: Math.random spares the run the start-up of crypto's generator.
    return `${system}-${Math.floor(Math.random() * 0x100_0000).toString(16).padStart(6, "0")}`;
  }

  /**
   * Claims system's one persistent instance for this process, as instance id; throws
   * CASTLE_INSTANCE_BUSY when a live castle holds it. Atomic across processes (see above).
   */
  async claimSystem(system: string, id: string): Promise<SystemClaim> {
    const slots = ensureDir(join(this.stateDir, "slots"), "state");
    const slot = this.slotFile(system);
    const mine: SlotOwner = { id, pid: process.pid, pidStart: processStart(process.pid) ?? 0 };
    removeDeadTemps(slots);
    const temp = `${slot}.${process.pid}-${Math.floor(Math.random() * 0x1_0000_0000).toString(16)}.tmp`;
    writeFileSync(temp, JSON.stringify(mine) + "\n");
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          linkSync(temp, slot);
          return {
            started: (sandboxPid) => {
              const owner: SlotOwner = { ...mine, sandboxPid, sandboxStart: processStart(sandboxPid) ?? 0 };
              writeFileAtomic(slot, JSON.stringify(owner) + "\n", { durable: false });
            },
            release: () => unlinkQuiet(slot),
          };
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
        }
        const seen = readQuiet(slot);
        const owner = parseOwner(seen);
        if (seen !== undefined && owner && slotHeld(owner)) throw busy(system, owner.id);
        // Stale (its castle died) or gone meanwhile: remove it if it is still that one, and retry.
        if (attempt >= 3) throw busy(system, owner?.id ?? "an instance that is starting");
        if (seen !== undefined) await this.removeStaleSlot(slot, seen);
      }
    } finally {
      unlinkQuiet(temp);
    }
  }

  /** The file a persistent run of system holds while it runs (see above; the fast path takes it too). */
  slotFile(system: string): string {
    return join(this.stateDir, "slots", encodeURIComponent(system));
  }

  private async removeStaleSlot(slot: string, stale: string): Promise<void> {
    const lock = await acquireLock(`${slot}.lock`);
    try {
      if (readQuiet(slot) === stale) unlinkQuiet(slot);
    } finally {
      await lock.release();
    }
  }

  add(instance: Omit<Instance, "pidStart">): Instance {
    const entry = { ...instance, pidStart: processStart(instance.pid) ?? 0 };
    writeFileAtomic(join(this.dir, `${instance.id}.json`), JSON.stringify(entry, null, 2) + "\n", { durable: false });
    return entry;
  }

  remove(id: string): void {
    try {
      unlinkSync(join(this.dir, `${id}.json`));
    } catch {
      // Already removed (e.g. by a `castle ps` that found it stale).
    }
  }

  /** Live instances; stale entries are deleted on the way. */
  list(): Instance[] {
    const out: Instance[] = [];
    for (const name of readdirSync(this.dir)) {
      // An entry being written (<id>.json.<pid>.<hex>.tmp) whose writer was killed meanwhile.
      const writer = Number(/\.json\.(\d+)\.[0-9a-z]+\.tmp$/.exec(name)?.[1]);
      if (writer && processStart(writer) === undefined) unlinkQuiet(join(this.dir, name));
      if (!name.endsWith(".json")) continue;
      let entry: Instance;
      try {
        entry = JSON.parse(readFileSync(join(this.dir, name), "utf8")) as Instance;
      } catch {
        continue;
      }
      if (isAlive(entry)) out.push(entry);
      else this.remove(entry.id);
    }
    return out.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  }

  /** The live instance with this id, or the only live one whose id starts with it. */
  find(idOrPrefix: string): Instance {
    const live = this.list();
    const exact = live.find((i) => i.id === idOrPrefix);
    if (exact) return exact;
    const matches = live.filter((i) => i.id.startsWith(idOrPrefix) || i.system === idOrPrefix);
    if (matches.length === 1) return matches[0]!;
    throw new CastleError(
      "CASTLE_INSTANCE_NOT_FOUND",
      matches.length === 0
        ? `no running instance "${idOrPrefix}"`
        : `"${idOrPrefix}" matches ${matches.length} instances: ${matches.map((m) => m.id).join(", ")}`,
      { data: { id: idOrPrefix }, hint: "see `castle ps`" },
    );
  }
}

function isAlive(instance: Instance): boolean {
  return processLives(instance.pid, instance.pidStart);
}

export { processStart };

function busy(system: string, id: string): CastleError {
  return new CastleError("CASTLE_INSTANCE_BUSY", `system ${system} is already running as ${id}`, {
    data: { system, instance: id },
    hint: `a system runs once at a time (its files are shared): use \`castle exec ${id}\` to join it, or --ephemeral to start a separate throwaway instance`,
  });
}

/** A slot is held while its castle lives, or its sandbox (still ending after a kill -9 of castle). */
function slotHeld(owner: SlotOwner): boolean {
  return processLives(owner.pid, owner.pidStart) || (owner.sandboxPid !== undefined && processLives(owner.sandboxPid, owner.sandboxStart ?? 0));
}

function parseOwner(text: string | undefined): SlotOwner | undefined {
  if (text === undefined) return undefined;
  try {
    const owner = JSON.parse(text) as SlotOwner;
    return typeof owner.pid === "number" && typeof owner.id === "string" ? owner : undefined;
  } catch {
    return undefined; // damaged: treated as stale
  }
}

/** Removes the temp files of slot claims (and of their updates) whose castle was killed at that instant. */
function removeDeadTemps(slots: string): void {
  for (const name of readdirSync(slots)) {
    const pid = Number(/\.(\d+)[.-][0-9a-f]+\.tmp$/.exec(name)?.[1]);
    if (pid && processStart(pid) === undefined) unlinkQuiet(join(slots, name));
  }
}

function readQuiet(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

function unlinkQuiet(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}
