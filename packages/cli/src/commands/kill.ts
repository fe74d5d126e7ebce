// Owns `castle kill`: stop a running instance — a signal to its command (passed on by the
// sandbox: SIGHUP for an interactive session on a terminal, which a shell obeys where it ignores
// SIGTERM; else SIGTERM), then, if it is still running after the grace period, SIGKILL for the
// sandbox's init, which ends every process inside while the sandbox's monitor stays to restore
// the user's terminal and report. The grace is short when the instance sits idle after the
// signal (it is ignoring it, not shutting down). Notices go to this command's stderr only.

import { readFileSync } from "node:fs";
import { EXIT } from "../context/exit-codes";
import { InstanceRegistry, processStart, type Instance } from "../context/instances";
import { parseCommand } from "../context/options";
import { castlePaths } from "../context/paths";
import { UsageError } from "../context/usage-error";

const HELP = `usage: castle kill <instance> [--signal SIG] [--timeout seconds]

Stops a running instance: sends SIG to its command — by default SIGHUP when the command is an
interactive session on a terminal (as closing the terminal would; a shell ignores SIGTERM),
else SIGTERM — and if it is still running after the timeout, kills the whole sandbox. The
default timeout is 10 s, cut to 1 s when the instance sits idle after the signal (no process
running or waiting on a disk, no CPU used); an explicit --timeout is waited in full.
<instance> is an id from \`castle ps\`, a unique prefix of one, or a system name with one running
instance. Prints the id of what it stopped; notices go to stderr.

examples:
  castle kill web-3f2a1c
  castle kill web --signal INT --timeout 30     # the only running instance of system "web"
`;

const DEFAULT_GRACE_MS = 10_000;
const IDLE_GRACE_MS = 1_000;

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    { signal: { type: "string", short: "s" }, timeout: { type: "string" }, help: { type: "boolean", short: "h" } },
    "kill",
  );
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  if (positionals.length !== 1) throw new UsageError("give one instance id (see `castle ps`)", "kill");
  const timeoutMs = values.timeout === undefined ? DEFAULT_GRACE_MS : Number(values.timeout) * 1000;
  if (!(timeoutMs >= 0)) throw new UsageError(`--timeout takes seconds, got "${values.timeout}"`, "kill");
  const explicitSignal = values.signal === undefined ? undefined : normaliseSignal(values.signal);
  const registry = new InstanceRegistry(castlePaths().state);
  const instance = registry.find(positionals[0]!);
  const alive = () => processStart(instance.pid) === instance.pidStart;
  const signal = explicitSignal ?? (interactive(instance) ? "SIGHUP" : "SIGTERM");
  process.kill(instance.pid, signal);

  const deadline = Date.now() + timeoutMs;
  const idle = values.timeout === undefined ? new IdleWatch(instance.initPid) : undefined;
  while (alive() && Date.now() < deadline && !idle?.idleFor(IDLE_GRACE_MS)) await new Promise((r) => setTimeout(r, 50));
  if (alive()) {
    process.stderr.write(`castle: ${instance.id} did not stop after ${signal}${Date.now() < deadline ? " and sits idle" : ""}; killing it\n`);
    killSandbox(instance);
    for (let waited = 0; alive() && waited < 5000; waited += 20) await new Promise((r) => setTimeout(r, 20));
  }
  registry.remove(instance.id);
  process.stdout.write(`${instance.id}\n`);
  return EXIT.ok;
}

/**
 * SIGKILL for the sandbox's init: the kernel ends everything in its pid namespace, and the
 * sandbox's monitor (the instance's pid) restores the user's terminal and reports 137. The
 * monitor itself only if init is gone or not ours to signal.
 */
function killSandbox(instance: Instance): void {
  try {
    if (processStart(instance.initPid) !== undefined) {
      process.kill(instance.initPid, "SIGKILL");
      return;
    }
  } catch {
    // Not ours to signal (an entry from another user?): the monitor then.
  }
  try {
    process.kill(instance.pid, "SIGKILL");
  } catch {
    // Gone meanwhile.
  }
}

/** Whether the instance's command is an interactive session: it leads its session and has a
 * controlling terminal (the sandbox's pty), as a shell started by `castle shell` does. */
function interactive(instance: Instance): boolean {
  const command = childrenOf(instance.initPid)[0];
  const stat = command === undefined ? undefined : procStat(command);
  return stat !== undefined && stat.session === command && stat.ttyNr !== 0;
}

interface ProcStat {
  state: string;
  session: number;
  ttyNr: number;
  /** utime + stime, in clock ticks. */
  cpu: number;
}

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
function procStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { state: f[0]!, session: Number(f[3]), ttyNr: Number(f[4]), cpu: Number(f[11]) + Number(f[12]) };
  } catch {
    return undefined;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Watches the processes of a sandbox (its init's descendants) for signs of work: any of them
 * running or in uninterruptible (disk) sleep, or CPU time spent. Idle for ms: none for that long.
 */
class IdleWatch {
  private lastCpu = -1;
  private quietSince = Date.now();

  constructor(private readonly initPid: number) {}

  idleFor(ms: number): boolean {
    let cpu = 0;
    let busy = false;
    const stack = childrenOf(this.initPid);
    for (let pid = stack.pop(); pid !== undefined; pid = stack.pop()) {
      const stat = procStat(pid);
      if (!stat) continue;
      cpu += stat.cpu;
      if (stat.state === "R" || stat.state === "D") busy = true;
      stack.push(...childrenOf(pid));
    }
    if (busy || cpu !== this.lastCpu) this.quietSince = Date.now();
    this.lastCpu = cpu;
    return Date.now() - this.quietSince >= ms;
  }
}

function normaliseSignal(name: string): NodeJS.Signals {
  const upper = name.toUpperCase();
  const full = (upper.startsWith("SIG") ? upper : `SIG${upper}`) as NodeJS.Signals;
  const known = ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGKILL", "SIGUSR1", "SIGUSR2"];
  if (!known.includes(full)) throw new UsageError(`unsupported signal "${name}" (use one of ${known.join(", ")})`, "kill");
  return full;
}
