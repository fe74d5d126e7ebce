// Owns the registry of running instances ($XDG_STATE_HOME/castle/instances/<id>.json): what
// `castle ps`, `exec` and `kill` see. An entry whose process is gone (or whose pid was reused)
// is stale and is removed when seen.

import { readFileSync, readdirSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "@castle/cache/store";
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
  cgroup?: string;
}

export class InstanceRegistry {
  private readonly dir: string;

  constructor(stateDir: string) {
    this.dir = ensureDir(join(stateDir, "instances"));
  }

  newId(system: string): string {
    // A name, not a secret: Math.random spares the run the start-up of crypto's generator.
    return `${system}-${Math.floor(Math.random() * 0x100_0000).toString(16).padStart(6, "0")}`;
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
  const start = processStart(instance.pid);
  return start !== undefined && (instance.pidStart === 0 || start === instance.pidStart);
}

/** Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot; undefined
 * when it is gone or a zombie (it has exited: a castle killed with SIGKILL leaves its sandbox
 * helper a zombie until whoever inherits it reaps it). */
export function processStart(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") return undefined;
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}
