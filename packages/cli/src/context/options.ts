// Owns the options shared by the commands that load and build a system (run, build, shell, why,
// export): their parsing with node:util parseArgs, and their help text.

import { parseArgs, type ParseArgsConfig } from "node:util";
import { didYouMean, type BuildLimitOverrides } from "@castle/graph";
import { parseBuildLimits } from "./resources";
import { type Config, expandPath, loadConfig } from "../config/load-config";
import { UsageError } from "./usage-error";

export const SYSTEM_OPTIONS = {
  "import-cache": { type: "string", multiple: true },
  "export-cache": { type: "string" },
  "strict-export": { type: "boolean" },
  "trusted-key": { type: "string", multiple: true },
  "signing-key": { type: "string" },
  override: { type: "string", multiple: true },
  jobs: { type: "string", short: "j" },
  plain: { type: "boolean" },
  verbose: { type: "boolean", short: "v" },
  rebuild: { type: "string", multiple: true },
  offline: { type: "boolean" },
  verify: { type: "boolean" },
  "build-pids": { type: "string" },
  "build-memory": { type: "string" },
  "build-tmp": { type: "string" },
  timings: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

export const SYSTEM_OPTIONS_HELP = `  --import-cache URL                  pull layers from this remote cache (repeatable: tried in
                                      order; also $CASTLE_IMPORT_CACHE, cache.import). URL is
                                      s3://bucket/prefix, oci://host/repository,
                                      https://host/path (read-only) or file:///directory
  --export-cache URL                  push every layer to this remote cache ($CASTLE_EXPORT_CACHE)
  --strict-export                     fail when an export fails (default: warn)
  --trusted-key name:base64           pull only manifests this key signed (repeatable; also
                                      $CASTLE_TRUSTED_KEYS, cache.trustedKeys)
  --signing-key FILE                  sign exported manifests (castle cache keygen;
                                      $CASTLE_SIGNING_KEY, cache.signingKey)
  --override name=dir                 build with a local dir instead of source <name>
                                      (repeatable; also CASTLE_OVERRIDE_<name>=dir)
  -j, --jobs N                        layers built at once (default: number of cores)
  --rebuild layer                     rebuild this layer even if cached (repeatable)
  --offline                           use the cached checkout of a git definition, no network
  --verify                            digest every stored layer before using it; a corrupt one
                                      is removed and built or pulled again (costs a full read)
  --build-pids N, --build-memory SIZE, --build-tmp SIZE
                                      every build's limits, over its layer's own (default 2048
                                      processes, 3/4 of RAM where a cgroup holds it, a 1G /tmp;
                                      "none" lifts one)
  --plain                             plain log lines instead of the live view
  -v, --verbose                       show build logs as they run
  --timings                           write the run's timeline as an HTML page (its path is
                                      printed; also later: castle history --timings)
  -h, --help                          this help`;

export interface SystemFlags {
  importCaches: string[];
  exportCache?: string;
  /** The effective settings (flags, environment, configuration file, defaults). */
  config: Config;
  strictExport: boolean;
  overrides: Record<string, string>;
  jobs?: number;
  plain: boolean;
  verbose: boolean;
  rebuild: string[];
  offline: boolean;
  verify: boolean;
  buildLimits: BuildLimitOverrides;
  timings: boolean;
}

type Values = { [K in keyof typeof SYSTEM_OPTIONS]?: unknown };

export function systemFlags(values: Values, env: NodeJS.ProcessEnv, command: string): SystemFlags {
  const overrides: Record<string, string> = {};
  for (const pair of (values.override as string[] | undefined) ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0 || eq === pair.length - 1) throw new UsageError(`--override takes name=dir, got "${pair}"`, command);
    overrides[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  let jobs: number | undefined;
  if (values.jobs !== undefined) {
    jobs = Number(values.jobs);
    if (!Number.isInteger(jobs) || jobs < 1) throw new UsageError(`--jobs takes a positive integer, got "${String(values.jobs)}"`, command);
  }
  const signingKey = values["signing-key"] as string | undefined;
  const config = loadConfig(env, {
    "cache.import": values["import-cache"] as string[] | undefined,
    "cache.export": values["export-cache"] as string | undefined,
    "cache.trustedKeys": values["trusted-key"] as string[] | undefined,
    "cache.signingKey": signingKey === undefined ? undefined : expandPath(signingKey, process.cwd(), env),
  });
  return {
    importCaches: config["cache.import"].value ?? [],
    exportCache: config["cache.export"].value,
    config,
    strictExport: Boolean(values["strict-export"]),
    overrides,
    jobs,
    plain: Boolean(values.plain),
    verbose: Boolean(values.verbose),
    rebuild: (values.rebuild as string[] | undefined) ?? [],
    offline: Boolean(values.offline),
    verify: Boolean(values.verify),
    buildLimits: parseBuildLimits(values as Record<string, string | undefined>, command),
    timings: Boolean(values.timings),
  };
}

/** The environment sources are fetched with: the user's, with the mirrors the settings name. */
export function sourceEnv(config: Config, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const mirrors = config["sources.mirrors"].value ?? [];
  return mirrors.length === 0 ? env : { ...env, CASTLE_MIRRORS: mirrors.join(" ") };
}

/** parseArgs with Castle's error style: unknown flags are usage errors naming the command. */
export function parseCommand<O extends ParseArgsConfig["options"]>(argv: string[], options: O, command: string) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(parseArgsMessage(error as Error & { code?: string }, Object.keys(options ?? {})), command);
  }
}

/** node:util's messages run over several lines; Castle's usage errors are one line. */
function parseArgsMessage(error: Error & { code?: string }, known: string[]): string {
  const first = error.message.split("\n")[0]!.replace(/\. To specify .*$/, "").replace(/\.$/, "");
  const option = /'(-{1,2}[^' ,]+)/.exec(first)?.[1];
  if (!option) return first;
  if (error.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    return `unknown option ${option}${option.startsWith("--") ? didYouMean(option.slice(2), known, (name) => `--${name}`) : ""}`;
  }
  if (/ambiguous/.test(first)) return `${option} needs a value (for one that starts with "-", write ${option}=VALUE)`;
  return first;
}

/** For commands that take no positionals: a stray word is a mistake, not something to ignore. */
export function noPositionals(positionals: string[], command: string): void {
  if (positionals.length > 0) throw new UsageError(`unexpected arguments: ${positionals.join(" ")}`, command);
}

/** Splits `args -- cmd args` at the first "--". */
export function splitCommand(argv: string[]): { own: string[]; command: string[] | undefined } {
  const at = argv.indexOf("--");
  return at < 0 ? { own: argv, command: undefined } : { own: argv.slice(0, at), command: argv.slice(at + 1) };
}
