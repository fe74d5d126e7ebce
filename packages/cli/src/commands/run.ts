// Owns `castle run`: build or fetch what is missing, then run the system's entrypoint (or the
// command after --) in the composed root, with the user's terminal; exit with its status.

import { pinLayers } from "@castle/cache/store";
import { EXIT } from "../context/exit-codes";
import { checkReservedOverlaps, parseMountFlags } from "../inside/mount-flags";
import { pinnedSourceTree } from "../inside/source-names";
import { reservedPaths } from "../inside/system-mounts";
import { parseCommand, splitCommand, SYSTEM_OPTIONS, SYSTEM_OPTIONS_HELP, systemFlags } from "../context/options";
import { buildPrepared, prepareSystem } from "../context/prepare";
import { parseLimits } from "../context/resources";
import { launchEnv } from "../context/launch-env";
import { confirmStateChoice, reportDiscarded } from "../context/fresh-state";
import { castlePaths } from "../context/paths";
import { runSystem } from "../context/run-system";
import { recordFastPath } from "../fastpath/record-run";
import { UsageError } from "../context/usage-error";

export const RUN_OPTIONS = {
  ...SYSTEM_OPTIONS,
  fresh: { type: "boolean" },
  yes: { type: "boolean" },
  ephemeral: { type: "boolean" },
  snapshot: { type: "boolean" },
  network: { type: "string" },
  memory: { type: "string" },
  pids: { type: "string" },
  cpus: { type: "string" },
  mount: { type: "string", multiple: true },
  env: { type: "string", short: "e", multiple: true },
  "no-castle": { type: "boolean" },
} as const;

export const RUN_OPTIONS_HELP = `${SYSTEM_OPTIONS_HELP}
  --fresh                             discard what earlier runs wrote and start clean (asks on a
                                      terminal; elsewhere it needs --yes); says what it discarded
  --yes                               with --fresh: discard without asking
  --ephemeral                         a throwaway state that starts EMPTY (the layers alone) and
                                      is removed when the command exits; the system's files stay
  --snapshot                          a throwaway state that starts from the system's files (what
                                      earlier runs wrote); they stay as they were
  --network host|none                 share the host's network (default) or only loopback
  --memory SIZE, --pids N, --cpus N   the system's limits: cgroups where Castle may create them
                                      (v2 delegated, v1 as root), else rlimits (a warning says so)
  --mount HOST:GUEST[:ro]             bind a host file or directory into the system (repeatable;
                                      read-write unless :ro)
  -e, --env NAME[=VALUE]              set a variable inside (NAME alone: its value here; repeatable)
  --no-castle                         do not mount Castle, the definition (~/castle-src) and the
                                      edited sources (~/src) into the system`;

const HELP = `usage: castle run <git-url|dir> [branch] [subdir] [options] [-- command args...]

Builds or fetches every layer the system needs, then runs its entrypoint (or the command after
--) in the composed root. Files the command writes persist for the next run of the same system.
A directory's second word may be a directory in it: \`castle run <dir> <subdir>\`.

Inside, \`castle\` is on PATH (Castle is mounted read-only at /.castle), the definition the system
was started from is at ~/castle-src (a work tree of the commit run, or the directory itself;
\`castle run\` inside defaults to it), \`castle edit <source>\` puts a source at ~/src/<source> for
every build inside to use, and builds inside reuse everything in this store.

examples:
  castle run ./my-system
  castle run https://example.org/distro.git main examples/distro
  castle run . -- /bin/sh -c 'cat /etc/os-release'
  castle run . --mount ./data:/data --mount /etc/ssl:/etc/ssl:ro
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
  const mounts = parseMountFlags(values.mount, name);
  const env = envFlags(values.env, name);
  const state = { fresh: Boolean(values.fresh), ephemeral: Boolean(values.ephemeral), snapshot: Boolean(values.snapshot), yes: Boolean(values.yes) };
  if (state.snapshot && (state.fresh || state.ephemeral)) {
    throw new UsageError("--snapshot starts from the system's files: it cannot be combined with --fresh or --ephemeral", name);
  }
  const prepared = await prepareSystem(positionals, flags, name, true);
  const { system } = prepared.graph;
  const castle = !values["no-castle"];
  checkReservedOverlaps(mounts, reservedPaths(castle && system.castle, system.env.HOME ?? "/root"), name);
  // The layers stay pinned against `cache prune` from the build's root until the system exits.
  const pin = pinLayers(prepared.store);
  try {
    const outcome = await buildPrepared(prepared, { pin });
    // Asked once the progress view is gone; the build itself never touches the system's files.
    const discarded = await confirmStateChoice(castlePaths().data, system.name, state, name);
    if (discarded) reportDiscarded(system.name, discarded);
    return await runSystem({
      system,
      outcome,
      command: shell ? ["/bin/sh", "-l"] : command,
      fresh: state.fresh,
      ephemeral: state.ephemeral,
      snapshot: state.snapshot,
      network: (values.network as "host" | "none" | undefined) ?? "host",
      limits,
      definition: prepared.location.label,
      castle,
      mounts,
      env,
      store: prepared.store,
      location: prepared.location,
      run: positionals.length > 0 ? positionals : [prepared.location.dir],
      importCaches: flags.importCaches,
      trustedKeys: flags.config["cache.trustedKeys"].value ?? [],
      sourceTree: (source) => pinnedSourceTree(prepared.graph, prepared.store, source, "CASTLE_OVERRIDE_UNKNOWN", `system ${system.name}: edit`),
      // What the native launcher needs to start this system again without Node (fastpath/).
      onStarted: (facts) => {
        const why = recordFastPath({ argv: process.argv.slice(2), prepared, outcome, facts, startedAtMs: performance.timeOrigin });
        if (why && launchEnv().CASTLE_FASTPATH_DEBUG) process.stderr.write(`castle: fast path: no entry: ${why}\n`);
      },
    });
  } finally {
    pin.release();
  }
}

/** --env NAME=VALUE, or NAME for this process's value (skipped when unset, as docker does). */
function envFlags(values: string[] | undefined, command: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of values ?? []) {
    const eq = pair.indexOf("=");
    const name = eq < 0 ? pair : pair.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new UsageError(`--env takes NAME=VALUE or NAME, got "${pair}"`, command);
    const value = eq < 0 ? process.env[name] : pair.slice(eq + 1);
    if (value !== undefined) out[name] = value;
  }
  return out;
}
