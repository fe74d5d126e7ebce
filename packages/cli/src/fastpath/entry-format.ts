// Owns the fast-path entry's wire format, which the native launcher (packages/cli/launcher,
// entry.c) reads: "castle-fastpath/1", then ops, each a keyword and a fixed shape of
// NUL-terminated strings, the sandbox spec as length-prefixed raw bytes, and "end". An entry says
// which invocation it answers (key), what must still hold for the answer to stand (files with
// their identities, variables, the prune generation, trees, the system's root, that the system
// is not running), and what the normal run decided, to be replayed byte for byte: the spec the
// sandbox helper reads, the pin, slot and instance record it held, the signals passed on, the
// error texts.

import type { FileRead, StatIdentity } from "@castle/graph";

export const ENTRY_HEADER = "castle-fastpath/1";

/** Stands for the run's instance id in the spec and the instance record (the launcher makes a
 * new id and puts it in each place this appears). */
export const INSTANCE_ID = "@@castle-instance-id@@";

export interface FastPathEntry {
  /** The invocation answered: `castle run <dir> [-- command...]` with stdin+stdout a terminal or not. */
  key: { dir: string; arg: string; tty: boolean; command: string[] };
  /** The node that evaluated the definition (the fall-through must use the same one). */
  node: StatIdentity;
  /** Paths whose identity must be as recorded: Castle's files, what the definition read, the
   * local sources' walks, the store's key records. */
  files: FileRead[];
  /** Variables that must have these values (undefined: unset). */
  env: [name: string, value: string | undefined][];
  /** Every variable with one of these prefixes must be listed in env ("" lists them all). */
  envPrefixes: string[];
  /** The working directory must be this (the definition, or an override path, used it). */
  cwd?: string;
  /** The store's prune generation: a prune since invalidates the entry. */
  generation: { file: string; value: number };
  /** Store trees that must be directories. */
  trees: string[];
  /** The system's GC root: it must still name these layers (its text around the use time), then it is touched. */
  root: { file: string; prefix: string; suffix: string };
  /** The run's pin on its layers: `{"pid":…,"pidStart":…,<tail>` in dir/<pid>-0.json, written by way of tmp. */
  pin: { dir: string; tmp: string; tail: string };
  /** The system's slot (one persistent instance per system), taken by link(2): busy if it exists. */
  slot: string;
  /** The system's persistent state: upper made, work emptied, the nested store made. */
  upper: { upper: string; work: string; nested: string };
  /** More directories the run makes (mkdir -p): the edited sources' dir… */
  mkdirs: string[];
  /** Whether each path exists now (stat, or lstat without follow), as when the run decided on
   * its cwd and its mounts. */
  exists: { path: string; follow: boolean; exists: boolean }[];
  helper: string;
  /** Signal names passed on to the sandbox, and ignored, while it runs. */
  signals: { forward: string[]; ignore: string[] };
  /** The instance record: written as `{"id":…,"pid":…,"initPid":…,"startedAt":…,"pidStart":…,<fields>}`. */
  instance: { dir: string; system: string; fields: string };
  /** What the normal path prints and exits with when the helper reports an error status. */
  errors: { status: number; exit: number; prefix: string; suffix: string; withMessage: boolean }[];
  /** The spec the helper reads, INSTANCE_ID standing for the instance id. */
  spec: Buffer;
}

export function identityToken(identity: StatIdentity): string {
  if (identity.kind === "absent") return "-";
  const { dev, ino, mode, size, mtimeMs, ctimeMs } = identity;
  return [dev, ino, mode, size, mtimeMs, ctimeMs].map(String).join(":");
}

export function identityFromToken(token: string): StatIdentity {
  if (token === "-") return { kind: "absent" };
  const parts = token.split(":").map(Number);
  if (parts.length !== 6 || parts.some((n) => !Number.isFinite(n))) throw new Error(`bad identity ${JSON.stringify(token)}`);
  const [dev, ino, mode, size, mtimeMs, ctimeMs] = parts as [number, number, number, number, number, number];
  return { kind: "present", dev, ino, mode, size, mtimeMs, ctimeMs };
}

/** The entry's bytes; throws on a string the format cannot carry (a NUL). */
export function serializeEntry(entry: FastPathEntry): Buffer {
  const out: string[] = [ENTRY_HEADER];
  const op = (...parts: (string | number)[]) => {
    for (const part of parts) {
      const text = String(part);
      if (text.includes("\0")) throw new Error(`fast-path entry: a NUL in ${JSON.stringify(text)}`);
      out.push(text);
    }
  };
  op("key", entry.key.dir, entry.key.arg, entry.key.tty ? 1 : 0, entry.key.command.length, ...entry.key.command);
  op("node", identityToken(entry.node));
  for (const [name, value] of entry.env) {
    if (value === undefined) op("unset", name);
    else op("env", name, value);
  }
  for (const prefix of entry.envPrefixes) op("env-prefix", prefix);
  if (entry.cwd !== undefined) op("cwd", entry.cwd);
  for (const read of entry.files) op(read.follow ? "stat" : "lstat", read.path, identityToken(read.identity));
  op("generation", entry.generation.file, entry.generation.value);
  for (const tree of entry.trees) op("tree", tree);
  op("root", entry.root.file, entry.root.prefix, entry.root.suffix);
  op("pin", entry.pin.dir, entry.pin.tmp, entry.pin.tail);
  op("slot", entry.slot);
  op("upper", entry.upper.upper, entry.upper.work, entry.upper.nested);
  for (const dir of entry.mkdirs) op("mkdir", dir);
  for (const check of entry.exists) op(check.follow ? "exists" : "lexists", check.path, check.exists ? 1 : 0);
  op("helper", entry.helper);
  op("signals", entry.signals.forward.join(","), entry.signals.ignore.join(","));
  op("instance", entry.instance.dir, entry.instance.system, entry.instance.fields);
  for (const e of entry.errors) op("error", e.status, e.exit, e.prefix, e.suffix, e.withMessage ? 1 : 0);
  op("spec", entry.spec.length);
  const head = Buffer.from(`${out.join("\0")}\0`, "utf8");
  return Buffer.concat([head, entry.spec, Buffer.from("end\0")]);
}

/** Reads an entry (for tests and benchmarks; the launcher has its own reader in C). */
export function parseEntry(bytes: Buffer): FastPathEntry {
  let at = 0;
  const next = (): string => {
    const end = bytes.indexOf(0, at);
    if (end < 0) throw new Error("fast-path entry: cut short");
    const text = bytes.subarray(at, end).toString("utf8");
    at = end + 1;
    return text;
  };
  if (next() !== ENTRY_HEADER) throw new Error("fast-path entry: not castle-fastpath/1");
  const entry: Partial<FastPathEntry> & Pick<FastPathEntry, "files" | "env" | "envPrefixes" | "trees" | "mkdirs" | "exists" | "errors"> = {
    files: [], env: [], envPrefixes: [], trees: [], mkdirs: [], exists: [], errors: [],
  };
  for (;;) {
    const keyword = next();
    switch (keyword) {
      case "key": {
        const dir = next();
        const arg = next();
        const tty = next() === "1";
        const count = Number(next());
        entry.key = { dir, arg, tty, command: Array.from({ length: count }, next) };
        break;
      }
      case "node": entry.node = identityFromToken(next()); break;
      case "env": entry.env.push([next(), next()]); break;
      case "unset": entry.env.push([next(), undefined]); break;
      case "env-prefix": entry.envPrefixes.push(next()); break;
      case "cwd": entry.cwd = next(); break;
      case "stat":
      case "lstat": entry.files.push({ path: next(), follow: keyword === "stat", identity: identityFromToken(next()) }); break;
      case "generation": entry.generation = { file: next(), value: Number(next()) }; break;
      case "tree": entry.trees.push(next()); break;
      case "root": entry.root = { file: next(), prefix: next(), suffix: next() }; break;
      case "pin": entry.pin = { dir: next(), tmp: next(), tail: next() }; break;
      case "slot": entry.slot = next(); break;
      case "upper": entry.upper = { upper: next(), work: next(), nested: next() }; break;
      case "mkdir": entry.mkdirs.push(next()); break;
      case "exists":
      case "lexists": entry.exists.push({ path: next(), follow: keyword === "exists", exists: next() === "1" }); break;
      case "helper": entry.helper = next(); break;
      case "signals": {
        const list = (text: string) => (text === "" ? [] : text.split(","));
        entry.signals = { forward: list(next()), ignore: list(next()) };
        break;
      }
      case "instance": entry.instance = { dir: next(), system: next(), fields: next() }; break;
      case "error":
        entry.errors.push({ status: Number(next()), exit: Number(next()), prefix: next(), suffix: next(), withMessage: next() === "1" });
        break;
      case "spec": {
        const length = Number(next());
        entry.spec = Buffer.from(bytes.subarray(at, at + length));
        at += length;
        if (next() !== "end" || at !== bytes.length) throw new Error("fast-path entry: no end after the spec");
        return entry as FastPathEntry;
      }
      default:
        throw new Error(`fast-path entry: unknown op ${JSON.stringify(keyword)}`);
    }
  }
}
