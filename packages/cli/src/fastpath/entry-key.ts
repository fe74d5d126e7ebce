// Owns which invocations the fast path answers and where their entries live, computed exactly
// as the native launcher computes them (launcher/main.c): `castle run <dir>` or `castle run
// <dir> -- command...`, nothing else (any option, a git URL, a branch takes the normal path);
// the directory resolved against the working directory like path.resolve, and as given; whether
// stdin and stdout are terminals. The entry's file is `<store>/fastpath/<fnv(dir)>-<fnv(key)>`:
// FNV-1a 64 of the resolved directory, then of the whole key, so the entries of one definition
// sit together (the file's content repeats the key, so a collision only misses).

import { resolve } from "node:path";

export interface FastPathKey {
  dir: string;
  /** The directory as given (the run tells the system how it was started: CASTLE_INSIDE's run). */
  arg: string;
  tty: boolean;
  /** The command after `--`, or [] for the system's entrypoint. */
  command: string[];
}

/** The key of a `castle` command line (argv without node and the script), or undefined. */
export function fastPathKey(argv: readonly string[], cwd: string, tty: boolean): FastPathKey | undefined {
  const [command, dir, separator, ...rest] = argv;
  if (command !== "run" || dir === undefined || dir === "" || dir.startsWith("-")) return undefined;
  if (/^(https?|file):\/\//i.test(dir)) return undefined;
  if (separator === undefined) return { dir: resolve(cwd, dir), arg: dir, tty, command: [] };
  if (separator !== "--" || rest.length === 0) return undefined;
  return { dir: resolve(cwd, dir), arg: dir, tty, command: rest };
}

/** The entry's file name (in the store's fastpath/ dir). */
export function entryName(key: FastPathKey): string {
  const all = [key.dir, key.arg, key.tty ? "1" : "0", ...key.command].map((part) => `${part}\0`).join("");
  return `${fnv1a64(key.dir)}-${fnv1a64(all)}`;
}

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK = (1n << 64n) - 1n;

/** FNV-1a, 64 bits, over the UTF-8 bytes; 16 hex digits. */
export function fnv1a64(text: string): string {
  let hash = FNV_OFFSET;
  for (const byte of Buffer.from(text, "utf8")) hash = ((hash ^ BigInt(byte)) * FNV_PRIME) & MASK;
  return hash.toString(16).padStart(16, "0");
}
