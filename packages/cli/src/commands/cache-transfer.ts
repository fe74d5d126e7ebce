// Owns `castle cache push` and `castle cache pull`: moving layers between the local store and a
// remote cache by hand, any kind of remote. Unlike a build, a fault here fails the command (exit
// 5) — nothing partial is published or kept — and the hint says so; pulls say whether what came
// is signed and by whom.

import type { KeyRecord, LocalStore, RemoteManifest } from "@castle/cache/store";
import { CastleError, isCastleError } from "@castle/errors";
import { expandPath, loadConfig } from "../config/load-config";
import { EXIT } from "../context/exit-codes";
import { parseCommand, SYSTEM_OPTIONS, systemFlags } from "../context/options";
import { buildPrepared, openRemoteCache, prepareSystem } from "../context/prepare";
import { UsageError } from "../context/usage-error";
import { formatBytes } from "../ui/format";

const PUSH_HINT = "nothing partial was published; run `castle cache push` again once the remote works";
const PULL_HINT = "nothing partial was kept (layers pulled before the fault stay); run `castle cache pull` again once the remote works";

export async function push(store: LocalStore, argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, { "signing-key": { type: "string" } }, "cache");
  if (positionals.length !== 1) throw new UsageError("cache push takes one remote URL", "cache");
  const key = values["signing-key"];
  const config = loadConfig(process.env, { "cache.signingKey": key === undefined ? undefined : expandPath(key, process.cwd()) });
  const remote = (await openRemoteCache(positionals[0], store, config, "export"))!;
  // Oldest first: a layer is always created after the layers it was built on.
  const records = store.records().sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  let uploaded = 0;
  let skipped = 0;
  try {
    for (const record of records) {
      const result = await remote.push(record, store, { name: record.name });
      uploaded += result.uploadedBytes;
      if (result.skipped) skipped++;
      process.stderr.write(`${result.skipped ? "present" : "pushed "} ${record.name} ${record.key.slice(0, 12)}\n`);
    }
  } catch (error) {
    throw hinted(error, PUSH_HINT);
  } finally {
    await remote.close();
  }
  const signed = config["cache.signingKey"].value ? `, signed with ${config["cache.signingKey"].value}` : "";
  process.stdout.write(`pushed ${records.length - skipped} keys (${formatBytes(uploaded)})${signed}; ${skipped} were already there\n`);
  return EXIT.ok;
}

export async function pull(store: LocalStore, argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, SYSTEM_OPTIONS, "cache");
  const [url, ...target] = positionals;
  if (!url) throw new UsageError("cache pull takes a remote URL", "cache");
  const flags = { ...systemFlags(values, process.env, "cache"), importCaches: [url], exportCache: undefined };
  if (target.length > 0) {
    const outcome = await buildPrepared(await prepareSystem(target, flags, "cache", true));
    process.stdout.write(`${outcome.stats.pulled} pulled, ${outcome.stats.cached} already here, ${outcome.stats.built} built\n`);
    return EXIT.ok;
  }
  const remote = (await openRemoteCache(url, store, flags.config, "import"))!;
  let present = 0;
  const pulled: RemoteManifest[] = [];
  const refused: string[] = [];
  try {
    const onSkipped = (key: string, error: Error) => {
      refused.push(key);
      process.stderr.write(`castle: warning: skipped ${key.slice(0, 12)}: ${error.message}\n`);
    };
    for await (const manifest of remote.list(onSkipped)) {
      if (store.lookup(manifest.key)) {
        present++;
        continue;
      }
      const record: KeyRecord | undefined = await remote.pull(manifest.key, store, { name: manifest.name, manifest });
      if (!record) continue;
      pulled.push(manifest);
      process.stderr.write(`pulled ${manifest.name} ${manifest.key.slice(0, 12)}\n`);
    }
  } catch (error) {
    throw hinted(error, PULL_HINT);
  } finally {
    await remote.close();
  }
  const trust = describeTrust(url, pulled);
  if (trust) process.stderr.write(`${trust}\n`);
  process.stdout.write(`pulled ${pulled.length} keys; ${present} were already here${refused.length ? `; ${refused.length} refused` : ""}\n`);
  return EXIT.ok;
}

/** Whether what was pulled is signed, and by whom: one line, or none when nothing was pulled. */
function describeTrust(url: string, pulled: RemoteManifest[]): string | undefined {
  if (pulled.length === 0) return undefined;
  const signers = new Set<string>();
  const unverified = new Set<string>();
  let unsigned = 0;
  for (const { trust } of pulled) {
    if (trust?.kind === "signed") signers.add(trust.by);
    else if (trust?.kind === "unverified") for (const s of trust.signers) unverified.add(s);
    else unsigned++;
  }
  const count = `${url}: ${pulled.length} layer${pulled.length === 1 ? "" : "s"} pulled`;
  if (unsigned > 0) return `castle: warning: ${count}, ${unsigned === pulled.length ? "none" : pulled.length - unsigned} signed — anyone who can write to it could have changed them; trust a key (--trusted-key, cache.trustedKeys) to require signatures`;
  if (unverified.size > 0) return `${count}, signed by ${[...unverified].join(", ")} but not verified: no trusted keys are configured`;
  return `${count}, signed by ${[...signers].join(", ")} (trusted)`;
}

/** A remote fault with the hint that is true for this command. */
function hinted(error: unknown, hint: string): unknown {
  if (!isCastleError(error) || !error.code.startsWith("CASTLE_REMOTE_")) return error;
  return new CastleError(error.code, error.message, { data: error.data, cause: error.cause ?? error, hint });
}
