// Owns the effective configuration: for every setting in settings.ts, a flag beats the
// environment, which beats the configuration file, which beats the default — and each value
// remembers where it came from (for `castle config`). The file is JSON, because Node parses it
// with no dependency: $CASTLE_CONFIG, else $XDG_CONFIG_HOME/castle/config.json (default
// ~/.config/castle/config.json), one object whose keys are the settings' dotted names. A missing
// file is an empty one; a file that is not JSON, holds an unknown key (reported with the closest
// known one) or a value of the wrong kind is CASTLE_CONFIG_INVALID, and so is one that cannot be
// read, or looked for (a HOME this user cannot enter): its settings may matter (trusted keys).

import { accessSync, constants, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { CastleError } from "@castle/errors";
import { SETTINGS, type Setting, type SettingKey, type SettingValue } from "./settings";

export type SettingSource = "flag" | "env" | "file" | "default";

export interface Resolved<K extends SettingKey> {
  /** Undefined when the setting has no default and nothing set it. */
  value: SettingValue<K> | undefined;
  from: SettingSource;
  /** The flag, the variable, or the file it came from. */
  where?: string;
}

export type Config = { readonly [K in SettingKey]: Resolved<K> } & { readonly file: string };

/** Values given on the command line, by setting. */
export type FlagValues = { [K in SettingKey]?: SettingValue<K> };

/** Where the configuration file is looked for. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CASTLE_CONFIG) return resolve(env.CASTLE_CONFIG);
  return join(env.XDG_CONFIG_HOME || join(env.HOME || homedir(), ".config"), "castle", "config.json");
}

/** The effective configuration. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, flags: FlagValues = {}): Config {
  const file = configPath(env);
  const stored = readConfigFile(file, env);
  const config: Record<string, unknown> = { file };
  for (const [key, setting] of Object.entries(SETTINGS) as Array<[SettingKey, Setting]>) {
    const flag = flags[key];
    const fromEnv = env[setting.env];
    if (flag !== undefined && !(Array.isArray(flag) && flag.length === 0)) {
      config[key] = { value: flag, from: "flag", where: `--${setting.flag ?? key}` };
    } else if (fromEnv !== undefined && fromEnv !== "") {
      config[key] = { value: fromEnvironment(key, setting, fromEnv, env), from: "env", where: setting.env };
    } else if (key in stored) {
      config[key] = { value: stored[key], from: "file", where: file };
    } else {
      config[key] = { value: setting.default === undefined ? undefined : copy(setting.default), from: "default" };
    }
  }
  return config as Config;
}

/** The file's settings, checked; {} when there is no file. */
function readConfigFile(file: string, env: NodeJS.ProcessEnv): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return {};
    const closed = code === "EACCES" ? closedAncestor(file) : undefined;
    if (closed !== undefined) {
      // Not even whether it exists can be told: a HOME that is another user's (e.g. /root, 0700).
      throw new CastleError("CASTLE_CONFIG_INVALID", `cannot look for the configuration file ${file}: this user cannot enter ${closed}`, {
        cause: error, data: { file },
        hint: "set XDG_CONFIG_HOME (or HOME) to a directory of this user's, or CASTLE_CONFIG to the file to use",
      });
    }
    throw invalid(file, `it cannot be read: ${(error as Error).message}`, error, `make ${file} readable by this user, or remove it`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw invalid(file, `it is not JSON: ${(error as Error).message}`, error);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw invalid(file, "it must hold one JSON object of settings");
  const out: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(value)) {
    const setting = (SETTINGS as Record<string, Setting>)[key];
    if (!setting) {
      const close = closest(key, Object.keys(SETTINGS));
      throw invalid(file, `"${key}" is not a setting${close ? ` (did you mean "${close}"?)` : ""}`, undefined, "`castle config` lists every setting");
    }
    out[key] = checkValue(key, setting, raw, file, env);
  }
  return out;
}

function checkValue(key: string, setting: Setting, raw: unknown, file: string, env: NodeJS.ProcessEnv): unknown {
  const wrong = (what: string) => invalid(file, `"${key}" must be ${what}, not ${JSON.stringify(raw)}`);
  switch (setting.kind) {
    case "list":
    case "words":
      if (!Array.isArray(raw) || !raw.every((v) => typeof v === "string")) throw wrong("a list of strings");
      return raw;
    case "number":
      if (typeof raw !== "number" || !Number.isFinite(raw) || raw < 0) throw wrong("a number, 0 or more");
      return raw;
    case "path":
      if (typeof raw !== "string" || raw === "") throw wrong("a path");
      return expandPath(raw, dirname(file), env);
    default:
      if (typeof raw !== "string" || raw === "") throw wrong("a string");
      return raw;
  }
}

function fromEnvironment(key: string, setting: Setting, raw: string, env: NodeJS.ProcessEnv): unknown {
  switch (setting.kind) {
    case "list":
      return raw.split(/[\s,]+/).filter(Boolean);
    case "words":
      return raw.split(/\s+/).filter(Boolean);
    case "number": {
      const value = Number(raw);
      if (!Number.isFinite(value) || value < 0) {
        throw new CastleError("CASTLE_CONFIG_INVALID", `${setting.env}=${JSON.stringify(raw)} is not a number (setting ${key})`, {
          data: { key, env: setting.env, value: raw },
          hint: `set ${setting.env} to a number, 0 or more, or unset it`,
        });
      }
      return value;
    }
    case "path":
      return expandPath(raw, process.cwd(), env);
    default:
      return raw;
  }
}

/** "~/x" under the home directory; a relative path under base. */
export function expandPath(path: string, base: string, env: NodeJS.ProcessEnv = process.env): string {
  if (path === "~" || path.startsWith("~/")) return join(env.HOME || homedir(), path.slice(1));
  return isAbsolute(path) ? path : resolve(base, path);
}

/** The known name nearest to name (edit distance), when it is near enough to be a typo. */
export function closest(name: string, known: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (!best || distance < best.distance) best = { name: candidate, distance };
  }
  return best && best.distance <= Math.max(3, Math.floor(name.length / 3)) ? best.name : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length] as number;
}

function copy<T>(value: T): T {
  return (Array.isArray(value) ? [...value] : value) as T;
}

/** The first directory on the way to file that this user may not enter, if any. */
function closedAncestor(file: string): string | undefined {
  let dir = "/";
  for (const part of dirname(file).split("/").filter(Boolean)) {
    dir = join(dir, part);
    try {
      accessSync(dir, constants.X_OK);
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === "EACCES" ? dir : undefined;
    }
  }
  return undefined;
}

function invalid(file: string, why: string, cause?: unknown, hint = `fix or remove ${file}`): CastleError {
  return new CastleError("CASTLE_CONFIG_INVALID", `the configuration file ${file} is not valid: ${why}`, { cause, data: { file }, hint });
}
