// Owns `castle kill`: stop a running instance — a signal (TERM by default) to its sandbox, which
// passes it to the command; after a grace period, SIGKILL ends the whole sandbox.

import { EXIT } from "../context/exit-codes";
import { InstanceRegistry, processStart } from "../context/instances";
import { parseCommand } from "../context/options";
import { castlePaths } from "../context/paths";
import { UsageError } from "../context/usage-error";

const HELP = `usage: castle kill <instance> [--signal SIG] [--timeout seconds]

Sends SIG (default TERM) to the instance's command; if it is still running after the timeout
(default 10 s), kills the whole sandbox. <instance> is an id from \`castle ps\`, a unique
prefix of one, or a system name with one running instance. Prints the id of what it stopped.

examples:
  castle kill web-3f2a1c
  castle kill web --signal INT --timeout 30     # the only running instance of system "web"
`;

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
  const signal = normaliseSignal(values.signal ?? "TERM");
  const timeoutMs = values.timeout === undefined ? 10_000 : Number(values.timeout) * 1000;
  if (!(timeoutMs >= 0)) throw new UsageError(`--timeout takes seconds, got "${values.timeout}"`, "kill");
  const registry = new InstanceRegistry(castlePaths().state);
  const instance = registry.find(positionals[0]!);
  const alive = () => processStart(instance.pid) === instance.pidStart;
  process.kill(instance.pid, signal);
  const deadline = Date.now() + timeoutMs;
  while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (alive()) {
    process.stderr.write(`castle: ${instance.id} did not stop after ${signal}; killing it\n`);
    process.kill(instance.pid, "SIGKILL");
  }
  registry.remove(instance.id);
  process.stdout.write(`${instance.id}\n`);
  return EXIT.ok;
}

function normaliseSignal(name: string): NodeJS.Signals {
  const upper = name.toUpperCase();
  const full = (upper.startsWith("SIG") ? upper : `SIG${upper}`) as NodeJS.Signals;
  const known = ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGKILL", "SIGUSR1", "SIGUSR2"];
  if (!known.includes(full)) throw new UsageError(`unsupported signal "${name}" (use one of ${known.join(", ")})`, "kill");
  return full;
}
