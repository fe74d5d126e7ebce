// Owns `castle config`: the effective settings and where each came from (a flag, the
// environment, the configuration file, or the default), and with --help every setting there is.

import { existsSync } from "node:fs";
import { loadConfig } from "../config/load-config";
import { SETTINGS, type Setting, type SettingKey } from "../config/settings";
import { EXIT } from "../context/exit-codes";
import { noPositionals, parseCommand } from "../context/options";

function help(): string {
  const rows = (Object.entries(SETTINGS) as Array<[SettingKey, Setting]>).map(([key, s]) => {
    const also = [s.env, s.flag && `--${s.flag}`].filter(Boolean).join(", ");
    const fallback = s.default === undefined ? "" : ` (default ${JSON.stringify(s.default)})`;
    return `  ${key}\n      ${s.doc}${fallback}\n      also: ${also}`;
  });
  return `usage: castle config [--json]

Prints the effective settings and where each came from. A flag beats the environment, which
beats the configuration file, which beats the default. The file is JSON, one object of the
settings below: $CASTLE_CONFIG, else $XDG_CONFIG_HOME/castle/config.json (default
~/.config/castle/config.json). Paths in it are relative to its directory.

settings:
${rows.join("\n")}

examples:
  castle config
  CASTLE_IMPORT_CACHE=file:///mnt/team-cache castle config --json

a config.json:
  {
    "cache.import": ["oci://registry.internal:5000/castle", "https://cache.example.org/castle"],
    "cache.trustedKeys": ["ci-1:<base64 public key>"],
    "transfer.minBytesPerSecond": 200000
  }
`;
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, { json: { type: "boolean" }, help: { type: "boolean", short: "h" } }, "config");
  if (values.help) {
    process.stdout.write(help());
    return EXIT.ok;
  }
  noPositionals(positionals, "config");
  const config = loadConfig(process.env);
  const keys = Object.keys(SETTINGS) as SettingKey[];
  if (values.json) {
    const settings = Object.fromEntries(keys.map((key) => [key, config[key]]));
    process.stdout.write(`${JSON.stringify({ file: config.file, exists: existsSync(config.file), settings }, null, 2)}\n`);
    return EXIT.ok;
  }
  const lines = [`config file: ${config.file}${existsSync(config.file) ? "" : " (none)"}`];
  const width = Math.max(...keys.map((k) => k.length));
  for (const key of keys) {
    const { value, from, where } = config[key];
    const shown = value === undefined ? "(unset)" : Array.isArray(value) ? (value.length === 0 ? "[]" : value.join(" ")) : String(value);
    const source = from === "default" ? "default" : from === "file" ? "file" : `${from} ${where}`;
    lines.push(`${key.padEnd(width)}  ${shown}  (${source})`);
  }
  process.stdout.write(`${lines.join("\n")}\n`);
  return EXIT.ok;
}
