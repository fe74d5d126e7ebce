// Owns the `castle` command's entry: finding Castle's own files, dispatching to a command
// (each loaded only when used, so a cached `castle run` pays for nothing else), and turning
// errors into one clear line, a hint, and an exit status scripts can rely on.

import { existsSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { EXIT, EXIT_TABLE, exitCodeFor } from "./context/exit-codes";
import { rememberLaunchEnv } from "./context/launch-env";
import { formatError, signalName } from "./context/report-error";
import { UsageError } from "./context/usage-error";

const COMMANDS: Record<string, () => Promise<{ main(argv: string[]): Promise<number> }>> = {
  run: () => import("./commands/run"),
  shell: () => import("./commands/shell"),
  build: () => import("./commands/build"),
  why: () => import("./commands/why"),
  exec: () => import("./commands/exec"),
  ps: () => import("./commands/ps"),
  kill: () => import("./commands/kill"),
  cache: () => import("./commands/cache"),
  export: () => import("./commands/export"),
  source: () => import("./commands/source"),
  edit: () => import("./commands/edit"),
  config: () => import("./commands/config"),
  log: () => import("./commands/log"),
  history: () => import("./commands/history"),
};

const HELP = `castle: build whole Linux systems from TypeScript and run them, without root

usage: castle <command> [options]

commands:
  run <git-url|dir> [branch] [subdir] [-- cmd...]   build what is missing, then run the system
  shell <git-url|dir> [branch] [subdir]             a shell in the system
  build <git-url|dir> [branch] [subdir]             build only; print the system's digest
  why <git-url|dir> [branch] [subdir]               which layers would rebuild, and why
  why [--run last|N]                                what a recorded run did, and why
  log <layer> [-f]                                  a layer's build log (or follow a build)
  history [--timings]                               recorded runs; a run's timeline as HTML
  exec <instance> [-- cmd...]                       run a command in a running instance
  ps                                                list running instances
  kill <instance>                                   stop a running instance
  cache ls|stats|prune|push|pull|verify|keygen      the local store and remote caches
  export <git-url|dir> ... --tar out.tar|--oci dir  the composed root as a tarball or OCI image
  source <git-url|dir> ... --name S --out DIR       unpack a source to patch it (see --override)
  edit <source>                                     inside a system: edit a source at ~/src/<source>;
                                                    every build inside uses it
  config                                            the effective settings, and where each came from

Run \`castle <command> --help\` for a command's options and examples.

inside a system castle runs (unless --no-castle):
  castle is on PATH (mounted read-only at /.castle, whatever the system's libc)
  ~/castle-src   the definition it was started from, writable; \`castle run\` defaults to it
  ~/src          sources put there by \`castle edit\`
  builds reuse every layer of the outer store and write only the system's own

environment:
  CASTLE_CACHE_DIR, XDG_CACHE_HOME   the store (default ~/.cache/castle)
  CASTLE_STATE_DIR, XDG_STATE_HOME   running instances (default ~/.local/state/castle)
  CASTLE_DATA_DIR, XDG_DATA_HOME     systems' persistent files (default ~/.local/share/castle)
  CASTLE_OVERRIDE_<source>=dir       build with a local dir instead of a declared source
  CASTLE_DEFINITION                  the definition \`castle run\` uses when given none
  CASTLE_MIRRORS                     mirrors tried first for http sources
  CASTLE_IMPORT_CACHE, CASTLE_EXPORT_CACHE   default remote caches (s3://, oci://, https://, file://)
  CASTLE_CONFIG, XDG_CONFIG_HOME     the configuration file (default ~/.config/castle/config.json);
                                     \`castle config --help\` lists every setting
  CASTLE_FASTPATH=0, CASTLE_FASTPATH_DEBUG=1  never start a cached run without Node; say why
                                     a run did or did not (see the README's fast path)

${EXIT_TABLE}
`;

/**
 * When running from the bundle, Castle's C programs and API module sit beside this file; inside a
 * system, the runtime's own zstd is beside the bundle too (../libexec), for pulls from a remote.
 */
function locateOwnFiles(): void {
  const here = dirname(fileURLToPath(import.meta.url));
  const beside: [string, string][] = [
    ["CASTLE_SANDBOX_HELPER", "castle-sandbox"],
    ["CASTLE_TREEUTIL", "castle-treeutil"],
    ["CASTLE_API_PATH", "api.mjs"],
    ["CASTLE_ZSTD", "../libexec/zstd"],
  ];
  for (const [variable, file] of beside) {
    if (!process.env[variable] && existsSync(join(here, file))) process.env[variable] = join(here, file);
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(HELP);
    return command === undefined ? EXIT.usage : EXIT.ok;
  }
  if (command === "--version" || command === "-V") {
    process.stdout.write(`castle ${typeof CASTLE_VERSION === "string" ? CASTLE_VERSION : "dev"}\n`);
    return EXIT.ok;
  }
  const load = COMMANDS[command];
  if (!load) {
    // The matcher lives with the definitions' (loaded only here: a known command pays nothing).
    const { didYouMean } = await import("@castle/graph");
    throw new UsageError(`unknown command "${command}"${didYouMean(command, Object.keys(COMMANDS), (name) => `\`castle ${name}\``)}`);
  }
  return (await load()).main(rest);
}

declare const CASTLE_VERSION: string;

function report(error: unknown): number {
  const verbose = process.argv.includes("-v") || process.argv.includes("--verbose") || Boolean(process.env.CASTLE_DEBUG);
  process.stderr.write(formatError(error, verbose));
  return exitCodeFor(error);
}

/** Runs the command line and exits with its status: called by the launcher, or below from source. */
export function cli(argv: string[] = process.argv.slice(2)): void {
  rememberLaunchEnv();
  locateOwnFiles();
  // Node 20 is Castle's supported runtime; the AWS SDK's notice about its future plans is noise here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  // Ctrl-C where no step handles it (loading, fetching the definition): say so, exit 130.
  // A build or a running system installs its own handler, which then does the work.
  const interrupted = (signal: NodeJS.Signals) => {
    if (process.listenerCount(signal) > 1) return;
    process.stderr.write(`\ncastle: interrupted (${signalName(signal)})\n`);
    process.exit(128 + (signal === "SIGINT" ? 2 : 15));
  };
  process.on("SIGINT", interrupted);
  process.on("SIGTERM", interrupted);
  main(argv).then(
    (code) => process.exit(code),
    (error) => process.exit(report(error)),
  );
}

// Run directly (e.g. `tsx packages/cli/src/main.ts`); the bundle is started by the launcher.
if (process.argv[1] && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) cli();
