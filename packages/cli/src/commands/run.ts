// Owns `castle run`: build or fetch what is missing, then run the system's entrypoint (or the
// command after --) in the composed root, with the user's terminal; exit with its status.

import { pinLayers } from "@castle/cache/store";
import { EXIT } from "../context/exit-codes";
import { parseCommand, splitCommand, SYSTEM_OPTIONS, SYSTEM_OPTIONS_HELP, systemFlags } from "../context/options";
import { buildPrepared, prepareSystem } from "../context/prepare";
import { parseLimits } from "../context/resources";
import { runSystem } from "../context/run-system";
import { UsageError } from "../context/usage-error";

export const RUN_OPTIONS = {
  ...SYSTEM_OPTIONS,
  fresh: { type: "boolean" },
  ephemeral: { type: "boolean" },
  network: { type: "string" },
  memory: { type: "string" },
  pids: { type: "string" },
  cpus: { type: "string" },
} as const;

export const RUN_OPTIONS_HELP = `${SYSTEM_OPTIONS_HELP}
  --fresh                             start from a clean state (discard what earlier runs wrote)
  --ephemeral                         use a throwaway state, removed when the command exits
  --network host|none                 share the host's network (default) or only loopback
  --memory SIZE, --pids N, --cpus N   the system's limits: cgroups where Castle may create them
                                      (v2 delegated, v1 as root), else rlimits (a warning says so)`;

const HELP = `usage: castle run <git-url|dir> [branch] [subdir] [options] [-- command args...]

Builds or fetches every layer the system needs, then runs its entrypoint (or the command after
--) in the composed root. Files the command writes persist for the next run of the same system.

examples:
  castle run ./my-system
  castle run https://example.org/distro.git main examples/distro
  castle run . -- /bin/sh -c 'cat /etc/os-release'
  CASTLE_OVERRIDE_musl_src=./musl castle run . -- sh -c 'exit 3'

options:
${RUN_OPTIONS_HELP}

exit status: the command's own; see \`castle --help\` for Castle's.
`;

/** `castle run`; `castle shell` passes its own help and gets a login shell instead of a command. */
export async function main(argv: string[], shell?: { help: string }): Promise<number> {
  const { own, command } = splitCommand(argv);
  const name = shell ? "shell" : "run";
  const { values, positionals } = parseCommand(own, RUN_OPTIONS, name);
  if (values.help) {
    process.stdout.write(shell ? shell.help : HELP);
    return EXIT.ok;
  }
  if (shell && command !== undefined) throw new UsageError("castle shell takes no command (use `castle run ... -- command`)", name);
  if (values.network !== undefined && values.network !== "host" && values.network !== "none") {
    throw new UsageError(`--network is host or none, got "${values.network}"`, name);
  }
  const flags = systemFlags(values, process.env, name);
  const limits = parseLimits(values, name);
  const prepared = await prepareSystem(positionals, flags, name, true);
  // The layers stay pinned against `cache prune` from the build's root until the system exits.
  const pin = pinLayers(prepared.store);
  try {
    const outcome = await buildPrepared(prepared, { pin });
    return await runSystem({
      system: prepared.graph.system,
      outcome,
      command: shell ? ["/bin/sh", "-l"] : command,
      fresh: Boolean(values.fresh),
      ephemeral: Boolean(values.ephemeral),
      network: (values.network as "host" | "none" | undefined) ?? "host",
      limits,
      definition: prepared.location.label,
    });
  } finally {
    pin.release();
  }
}
