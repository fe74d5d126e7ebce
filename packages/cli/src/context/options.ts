// Owns the options shared by the commands that load and build a system (run, build, shell, why,
// export): their parsing with node:util parseArgs, and their help text.

import { parseArgs, type ParseArgsConfig } from "node:util";
import type { BuildLimitOverrides } from "@castle/graph";
import { parseBuildLimits } from "./resources";
import { UsageError } from "./usage-error";

export const SYSTEM_OPTIONS = {
  "import-cache": { type: "string", multiple: true },
  "export-cache": { type: "string" },
  "strict-export": { type: "boolean" },
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
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

export const SYSTEM_OPTIONS_HELP = `  --import-cache s3://bucket/prefix   pull layers from this remote cache (repeatable;
                                      also $CASTLE_IMPORT_CACHE)
  --export-cache s3://bucket/prefix   push every layer to this remote cache ($CASTLE_EXPORT_CACHE)
  --strict-export                     fail when an export fails (default: warn)
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
  -h, --help                          this help`;

export interface SystemFlags {
  importCaches: string[];
  exportCache?: string;
  strictExport: boolean;
  overrides: Record<string, string>;
  jobs?: number;
  plain: boolean;
  verbose: boolean;
  rebuild: string[];
  offline: boolean;
  verify: boolean;
  buildLimits: BuildLimitOverrides;
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
  const importCaches = (values["import-cache"] as string[] | undefined) ?? splitList(env.CASTLE_IMPORT_CACHE);
  return {
    importCaches,
    exportCache: (values["export-cache"] as string | undefined) ?? (env.CASTLE_EXPORT_CACHE || undefined),
    strictExport: Boolean(values["strict-export"]),
    overrides,
    jobs,
    plain: Boolean(values.plain),
    verbose: Boolean(values.verbose),
    rebuild: (values.rebuild as string[] | undefined) ?? [],
    offline: Boolean(values.offline),
    verify: Boolean(values.verify),
    buildLimits: parseBuildLimits(values as Record<string, string | undefined>, command),
  };
}

function splitList(value: string | undefined): string[] {
  return value ? value.split(/[\s,]+/).filter(Boolean) : [];
}

/** parseArgs with Castle's error style: unknown flags are usage errors naming the command. */
export function parseCommand<O extends ParseArgsConfig["options"]>(argv: string[], options: O, command: string) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(parseArgsMessage(error as Error & { code?: string }), command);
  }
}

/** node:util's messages run over several lines; Castle's usage errors are one line. */
function parseArgsMessage(error: Error & { code?: string }): string {
  const first = error.message.split("\n")[0]!.replace(/\. To specify .*$/, "").replace(/\.$/, "");
  const option = /'(-{1,2}[^' ,]+)/.exec(first)?.[1];
  if (!option) return first;
  if (error.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") return `unknown option ${option}`;
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
