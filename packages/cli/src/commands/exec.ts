// Owns `castle exec`: run a command (default: a login shell) inside a running instance — its
// filesystem, processes, hostname and network — with the instance's environment, working
// directory and limits, on the user's terminal when there is one; exit with its status.

import { isatty } from "node:tty";
import { CastleError, isCastleError } from "@castle/errors";
import { enter, type EnterSpec } from "@castle/sandbox";
import { EXIT } from "../context/exit-codes";
import { forwardSignals } from "../context/forward-signals";
import { InstanceRegistry, type Instance } from "../context/instances";
import { parseCommand, splitCommand } from "../context/options";
import { castlePaths } from "../context/paths";
import { commandError } from "../context/run-system";
import { UsageError } from "../context/usage-error";

const HELP = `usage: castle exec <instance> [options] [-- command args...]

Runs a command (default: a login shell, /bin/sh -l) inside a running instance: its files,
processes, hostname and network, with the system's environment and working directory. The
command gets a terminal when stdin and stdout are one. <instance> is an id from \`castle ps\`, a
unique prefix of one, or a system name with one running instance.

examples:
  castle exec web-3f2a1c -- ps
  castle exec web                        # a shell in the only running instance of system "web"
  castle exec web -e DEBUG=1 -w /var/log -- tail -n 20 app.log

options:
  -e, --env NAME=VALUE   set a variable for the command (repeatable)
  -w, --workdir DIR      working directory inside (default: the system's)
  -h, --help             this help

exit status: the command's own; 6 if the instance is not running; see \`castle --help\`.
`;

const DEFAULT_ENV = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", HOME: "/root" };

export async function main(argv: string[]): Promise<number> {
  const { own, command } = splitCommand(argv);
  const { values, positionals } = parseCommand(
    own,
    { env: { type: "string", short: "e", multiple: true }, workdir: { type: "string", short: "w" }, help: { type: "boolean", short: "h" } },
    "exec",
  );
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length === 0 ? "which instance? give an id from `castle ps`" : `unexpected arguments: ${positionals.slice(1).join(" ")} (put the command after --)`, "exec");
  }
  if (command !== undefined && command.length === 0) throw new UsageError("no command after --", "exec");
  const extraEnv: Record<string, string> = {};
  for (const pair of values.env ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`--env takes NAME=VALUE, got "${pair}"`, "exec");
    extraEnv[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  if (values.workdir !== undefined && !values.workdir.startsWith("/")) throw new UsageError(`--workdir must be an absolute path inside, got "${values.workdir}"`, "exec");
  const instance = new InstanceRegistry(castlePaths().state).find(positionals[0]!);
  const spec: EnterSpec = {
    argv: command ?? ["/bin/sh", "-l"],
    env: { ...DEFAULT_ENV, ...instance.env, ...(process.env.TERM ? { TERM: process.env.TERM } : {}), ...extraEnv },
    cwd: values.workdir ?? instance.cwd ?? "/",
    tty: isatty(0) && isatty(1),
    ...(instance.rlimits ? { rlimits: instance.rlimits } : {}),
    ...(instance.cgroups ? { cgroups: instance.cgroups } : {}),
  };
  const child = enter({ initPid: instance.initPid }, spec, { stdio: "inherit" });
  const stopForwarding = forwardSignals(child);
  try {
    return (await child.wait()).code;
  } catch (error) {
    throw gone(error, instance) ?? commandError(error, spec.argv, `instance ${instance.id}`);
  } finally {
    stopForwarding();
  }
}

/** An instance that ended between `castle ps` and now is "no such running instance" (6). */
function gone(error: unknown, instance: Instance): CastleError | undefined {
  if (!isCastleError(error) || error.code !== "CASTLE_SANDBOX_ENTER") return undefined;
  const reason = (error.data as { reason?: string } | undefined)?.reason;
  if (reason !== "no-such-process" && reason !== "exited") return undefined;
  return new CastleError("CASTLE_INSTANCE_NOT_FOUND", `instance ${instance.id} is no longer running`, {
    cause: error,
    data: { id: instance.id },
    hint: "see `castle ps`",
  });
}
