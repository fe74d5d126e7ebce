// Owns writing the fast-path entry after a normal `castle run` of a pure definition (called once
// the command runs): everything the run depended on, each with what it was — Castle's own files
// and node, the environment Castle and the definition read, the working directory when it
// mattered, the configuration file, the files the definition and its bundle read, the local
// sources' walks, the store's records, trees, prune generation and the system's root — and what
// the run decided, to be replayed by the native launcher: the spec bytes, the instance record,
// the state dirs, the signals, the error texts. Any doubt (an impure definition, a remote cache, a file changed too
// recently to trust its stat, a prune running) writes no entry and says why.

import { existsSync, readdirSync, readFileSync, statSync, unlinkSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { fileURLToPath } from "node:url";
import { pruneGeneration, pruneGenerationPath, rootPath, writeFileAtomic, type LocalStore } from "@castle/cache/store";
import type { BuildOutcome, FileRead } from "@castle/graph";
import { castleApiPath, isRacy, statIdentity } from "@castle/graph";
import { errorFromStatus, helperPath, serializeSpec } from "@castle/sandbox";
import { exitCodeFor } from "../context/exit-codes";
import { launchEnv } from "../context/launch-env";
import type { PreparedSystem } from "../context/prepare";
import { formatError } from "../context/report-error";
import { FORWARDED_SIGNALS } from "../context/forward-signals";
import { commandError, type RunFacts } from "../context/run-system";
import { INSTANCE_ID, serializeEntry, type FastPathEntry } from "./entry-format";
import { entryName, fastPathKey } from "./entry-key";

/** Variables Castle itself (or Node, or the definition's Intl and Date) depends on. */
const NAMED_ENV = ["HOME", "TERM", "LANG", "LANGUAGE", "TZ", "CI", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"];
/** Every variable with these prefixes counts (a new CASTLE_OVERRIDE_x, NODE_OPTIONS, LC_ALL, the
 * AWS settings passed into a system…). */
const ENV_PREFIXES = ["CASTLE_", "NODE_", "LC_", "AWS_"];
/** The fast path's own switches, never part of an entry (see launcher/main.c). */
const OWN_PREFIX = "CASTLE_FASTPATH";
/** Read by Node for the local time zone when TZ is unset (a definition's local dates depend on it). */
const MACHINE_FILES = ["/etc/localtime"];
/** Entries kept per definition directory (one per command line that was run). */
const ENTRIES_PER_DIR = 32;

export interface RunRecord {
  argv: readonly string[];
  prepared: PreparedSystem;
  outcome: BuildOutcome;
  facts: RunFacts;
  /** When this castle process started (ms since the epoch): stats of files changed since are racy. */
  startedAtMs: number;
}

/** Writes the entry for this run; returns why none was written, or undefined. */
export function recordFastPath(record: RunRecord): string | undefined {
  try {
    const built = buildEntry(record);
    if (typeof built === "string") return built;
    const dir = record.prepared.store.dir("fastpath");
    const file = join(dir, entryName(built.key));
    const bytes = serializeEntry(built);
    if (!sameBytes(file, bytes)) {
      writeFileAtomic(file, bytes, { durable: false });
      trimEntries(dir, entryName(built.key).slice(0, 16));
    }
    return undefined;
  } catch (error) {
    // The fast path only saves time: a failure to record it changes nothing else.
    return `cannot write the entry: ${(error as Error).message}`;
  }
}

function buildEntry({ argv, prepared, outcome, facts, startedAtMs }: RunRecord): FastPathEntry | string {
  const { store, loaded, flags } = prepared;
  const env = launchEnv();
  const key = fastPathKey(argv, process.cwd(), Boolean(facts.spec.tty));
  if (!key) return "not a `castle run <dir> [-- command]`";
  if (loaded.reads.impure.length > 0) return `the definition is impure: ${loaded.reads.impure.join("; ")}`;
  if (flags.importCaches.length > 0 || flags.exportCache) return "a remote cache is configured";
  // Limits make spawn() set up cgroups for each run (sandbox/limits.ts): nothing the launcher replays.
  if (facts.spec.limits !== undefined) return "the run has resource limits";
  if (env.CASTLE_DEBUG) return "CASTLE_DEBUG is set";
  const castleFiles = ownFiles();
  if (!castleFiles) return "Castle's native launcher is not installed beside its bundle";
  const paths = [store.root, facts.instancesDir, facts.state.upper];
  if (paths.some((path) => !isAbsolute(path))) return "a store, state or data directory is relative";
  const generation = pruneGeneration(store);
  if (generation % 2 !== 0) return "a cache prune is running";
  if (!store.lowers.empty) return "the store reads lower tiers (a Castle inside a system)";
  if (facts.inside.notes.length > 0) return `the run printed notes: ${facts.inside.notes.join("; ")}`;
  if (facts.inside.edits) return "the run places edited sources (system({ edit }))";

  const names = new Set(NAMED_ENV);
  for (const name of Object.keys(env)) if (ENV_PREFIXES.some((p) => name.startsWith(p))) names.add(name);
  for (const name of loaded.reads.env.keys()) names.add(name);
  if (loaded.reads.envListed) for (const name of Object.keys(env)) names.add(name);
  if ([...names].some((name) => name.startsWith(OWN_PREFIX)) && (loaded.reads.envListed || [...loaded.reads.env.keys()].some((name) => name.startsWith(OWN_PREFIX)))) {
    return `the definition read the fast path's own ${OWN_PREFIX}* variables`;
  }
  const envList = [...names].filter((name) => !name.startsWith(OWN_PREFIX)).sort();
  // An override's relative dir is resolved against the working directory.
  const relativeOverride = Object.entries(env).some(([name, value]) => name.startsWith("CASTLE_OVERRIDE_") && value && !isAbsolute(value));
  const cwd = loaded.reads.cwd ?? (relativeOverride ? process.cwd() : undefined);

  const records = outcome.used.map((r) => ({ path: store.recordPath(r.key), follow: false, identity: statIdentity(store.recordPath(r.key), false) }));
  // The configuration file (or its absence): its settings reach the system (trusted keys…).
  const config: FileRead = { path: flags.config.file, follow: true, identity: statIdentity(flags.config.file, true) };
  const files: FileRead[] = [...castleFiles, config, ...loaded.reads.files, ...prepared.localReads, ...records];
  const racy = files.find((read) => isRacy(read.identity, startedAtMs));
  if (racy) return `${racy.path} changed too recently to trust its stat`;
  const root = rootText(store, facts.instance.system, outcome);
  if (typeof root === "string") return root;
  if (!facts.slot) return "the run holds no slot (ephemeral)";
  const keys = [...new Set(outcome.used.map((r) => r.key))];
  const digests = [...new Set(outcome.used.map((r) => r.digest))];
  const replay = withInstanceId(facts);
  if (typeof replay === "string") return replay;

  return {
    key,
    node: statIdentity(process.execPath, true),
    files,
    env: envList.map((name) => [name, env[name]]),
    envPrefixes: loaded.reads.envListed ? [""] : ENV_PREFIXES,
    ...(cwd !== undefined ? { cwd } : {}),
    generation: { file: pruneGenerationPath(store), value: generation },
    trees: [...new Set([facts.inside.bottom, ...outcome.used.map((r) => store.treePath(r.digest))])],
    root,
    // As pinLayers writes it: {"pid":…,"pidStart":…,"keys":[…],"digests":[…]}
    pin: { dir: store.dir("pins"), tmp: store.dir("tmp"), tail: `${JSON.stringify({ keys, digests }).slice(1)}\n` },
    slot: facts.slot,
    upper: { upper: facts.state.upper, work: facts.state.work, nested: facts.state.nestedStore },
    mkdirs: facts.inside.made,
    exists: [...(facts.cwdCheck ? [{ ...facts.cwdCheck, follow: true }] : []), ...facts.inside.depends],
    helper: helperPath(),
    signals: { forward: [...FORWARDED_SIGNALS], ignore: [] },
    instance: { dir: facts.instancesDir, system: facts.instance.system, fields: replay.fields },
    errors: errorTexts(facts.instance.command, facts.instance.system),
    spec: replay.spec,
  };
}

/**
 * The spec's bytes and the instance record's fields with INSTANCE_ID for the instance id, which
 * a system knows through CASTLE_INSIDE (and only there); or why not.
 */
function withInstanceId(facts: RunFacts): { spec: Buffer; fields: string } | string {
  const plain = { spec: serializeSpec(facts.spec).toString("latin1"), fields: JSON.stringify(facts.instance).slice(1, -1) };
  if (plain.spec.includes(INSTANCE_ID) || plain.fields.includes(INSTANCE_ID)) return `the run's command or variables hold ${INSTANCE_ID}`;
  const inside = facts.spec.env?.CASTLE_INSIDE;
  const templated = inside === undefined ? undefined : inside.split(`"instance":${JSON.stringify(facts.id)}`).join(`"instance":"${INSTANCE_ID}"`);
  if (templated === inside) return { spec: Buffer.from(plain.spec, "latin1"), fields: plain.fields };
  const env = { ...facts.spec.env!, CASTLE_INSIDE: templated! };
  return {
    spec: serializeSpec({ ...facts.spec, env }),
    fields: JSON.stringify({ ...facts.instance, env }).slice(1, -1),
  };
}

/** Castle's files a run depends on (a reinstall or upgrade changes them) and the machine's, or
 * undefined without the launcher. */
function ownFiles(): FileRead[] | undefined {
  const dist = dirname(fileURLToPath(import.meta.url));
  const launcher = join(dist, "castle");
  if (!existsSync(launcher)) return undefined;
  const paths = [launcher, join(dist, "castle.cjs"), join(dist, "core.cjs"), castleApiPath(), helperPath(), ...MACHINE_FILES];
  return paths.map((path) => ({ path, follow: true, identity: statIdentity(path, true) }));
}

/** The root's text around its use time, once it names exactly the layers this run used. */
function rootText(store: LocalStore, system: string, outcome: BuildOutcome): FastPathEntry["root"] | string {
  const file = rootPath(store, system);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return "the system's root is missing";
  }
  const root = JSON.parse(text) as { keys?: string[]; digests?: string[] };
  const keys = [...new Set(outcome.used.map((r) => r.key))].sort();
  const digests = [...new Set(outcome.used.map((r) => r.digest))].sort();
  if (root.keys?.join() !== keys.join() || root.digests?.join() !== digests.join()) return "the system's root names other layers";
  const marker = '"usedAt":"';
  const start = text.indexOf(marker);
  const end = start < 0 ? -1 : text.indexOf('"', start + marker.length);
  if (end < 0) return "the system's root has no use time";
  return { file, prefix: text.slice(0, start + marker.length), suffix: text.slice(end) };
}

const MESSAGE = "\u0001castle-helper-message\u0001";

/** What the normal path prints when the helper reports an error, by its status code. */
function errorTexts(argv: string[], system: string): FastPathEntry["errors"] {
  return [125, 126, 127].map((status) => {
    const error = commandError(errorFromStatus(status, MESSAGE, argv), argv, `system ${system}`);
    const text = formatError(error, false);
    const at = text.indexOf(MESSAGE);
    return at < 0
      ? { status, exit: exitCodeFor(error), prefix: text, suffix: "", withMessage: false }
      : { status, exit: exitCodeFor(error), prefix: text.slice(0, at), suffix: text.slice(at + MESSAGE.length), withMessage: true };
  });
}

function sameBytes(file: string, bytes: Buffer): boolean {
  try {
    return readFileSync(file).equals(bytes);
  } catch {
    return false;
  }
}

/** Removes every entry (after a prune, which makes them all stale anyway: see the generation). */
export function clearEntries(store: LocalStore): void {
  const dir = store.dir("fastpath");
  for (const name of readdirSync(dir)) {
    try {
      unlinkSync(join(dir, name));
    } catch {
      // another castle removed or replaced it
    }
  }
}

/** Keeps the newest entries of one definition directory. */
function trimEntries(dir: string, prefix: string): void {
  const mine = readdirSync(dir).filter((name) => name.startsWith(`${prefix}-`) && !name.endsWith(".tmp"));
  if (mine.length <= ENTRIES_PER_DIR) return;
  const byAge = mine.map((name) => ({ name, at: statSync(join(dir, name)).mtimeMs })).sort((a, b) => a.at - b.at);
  for (const { name } of byAge.slice(0, byAge.length - ENTRIES_PER_DIR)) {
    try {
      unlinkSync(join(dir, name));
    } catch {
      // another castle removed it
    }
  }
}
