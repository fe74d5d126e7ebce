// Owns `castle cache keygen <name>`: a new ed25519 key pair for signing exported manifests. The
// secret key goes to <dir>/<name>.secret (mode 0600, never overwritten), the public key to
// <dir>/<name>.public and to stdout as the one line importers trust (name:base64).

import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import { CastleError } from "@castle/errors";
import { configPath } from "../config/load-config";
import { EXIT } from "../context/exit-codes";
import { parseCommand } from "../context/options";
import { UsageError } from "../context/usage-error";

export async function keygen(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, { dir: { type: "string" } }, "cache");
  if (positionals.length !== 1) throw new UsageError("cache keygen takes one key name, e.g. castle cache keygen ci-1", "cache");
  const name = positionals[0] as string;
  const { generateSigningKey } = await import("@castle/cache/remote");
  const { secret, publicLine } = generateSigningKey(name);
  const dir = values.dir ? resolve(values.dir) : join(configPath().replace(/\/[^/]+$/, ""), "keys");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const secretFile = join(dir, `${name}.secret`);
  writeNew(secretFile, secret, 0o600);
  writeNew(join(dir, `${name}.public`), `${publicLine}\n`, 0o644);
  process.stdout.write(`${publicLine}\n`);
  process.stderr.write(
    `secret key: ${secretFile} (keep it private; export with --signing-key ${secretFile}, or cache.signingKey in castle's config)\n` +
      `trust it where you pull: --trusted-key '${publicLine}', or add it to cache.trustedKeys\n`,
  );
  return EXIT.ok;
}

/** Creates file with text; never replaces an existing key. */
function writeNew(file: string, text: string, mode: number): void {
  let fd: number;
  try {
    fd = openSync(file, "wx", mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") {
      throw new CastleError("CASTLE_KEY_EXISTS", `${file} already exists; Castle never replaces a key`, {
        data: { file },
        hint: "pick another name, or --dir another directory",
      });
    }
    throw error;
  }
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}
