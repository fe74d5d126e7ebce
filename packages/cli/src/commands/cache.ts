// Owns `castle cache`: look at and tend the local store (ls, stats, prune, verify); moving layers
// to and from remote caches (push, pull) is cache-transfer.ts, signing keys cache-keygen.ts.

import { diskUsage, pruneStore, verifyStore, type LocalStore } from "@castle/cache/store";
import { didYouMean } from "@castle/graph";
import { clearEntries } from "../fastpath/record-run";
import { EXIT } from "../context/exit-codes";
import { readTotals } from "../context/cache-stats";
import { noPositionals, parseCommand } from "../context/options";
import { castlePaths, openCastleStore } from "../context/paths";
import { InstanceRegistry } from "../context/instances";
import { nestedStores } from "../context/system-state";
import { parseBytes } from "../context/resources";
import { UsageError } from "../context/usage-error";
import { formatBytes, formatDuration as formatMs } from "../ui/format";

const HELP = `usage: castle cache <ls|stats|prune|verify|push|pull|keygen> [options]

  ls [--json]                          layers in the local store
  stats                                store size, and totals over all builds: cache hits,
                                       pulls, builds, bytes moved, build time saved
  prune [--keep-days N] [--max-size SIZE] [--dry-run]
                                       remove layers no system used in the last N days
                                       (default 30); with --max-size, then the least recently
                                       used until the store fits. Systems running now keep
                                       their layers under every option (a size limit can
                                       leave more); a prune waits for running builds
  verify                               digest every stored tree again; remove corrupt ones
  push URL [--signing-key FILE]        upload every local layer the remote lacks (signed
                                       with the key, if given or configured)
  pull URL [<git-url|dir> [branch] [subdir]] [--trusted-key name:base64]
                                       download the layers a system needs (building what the
                                       remote lacks), or with no system, every layer it has
  keygen NAME [--dir DIR]              make an ed25519 key pair for signing exports; prints
                                       the public key (default dir: ~/.config/castle/keys)

  URL is s3://bucket/prefix, oci://host[:port]/repository, https://host/path (read-only:
  a web server serving an exported directory or bucket) or file:///directory. Registry
  credentials come from docker's config.json; S3's from the usual AWS chain.

examples:
  castle cache prune --max-size 20G
  castle cache keygen ci-1
  castle cache push s3://team-cache/castle --signing-key ~/.config/castle/keys/ci-1.secret
  castle cache pull oci://registry.internal:5000/castle ./distro --trusted-key ci-1:...
  AWS_ENDPOINT_URL=http://127.0.0.1:9000 castle cache pull s3://ci/castle ./distro
`;

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "--help" || sub === "-h") {
    process.stdout.write(HELP);
    return sub === undefined ? EXIT.usage : EXIT.ok;
  }
  const store = openCastleStore();
  switch (sub) {
    case "ls":
      return list(store, rest);
    case "stats":
      noPositionals(parseCommand(rest, {}, "cache").positionals, "cache");
      return stats(store);
    case "prune":
      return prune(store, rest);
    case "verify":
      noPositionals(parseCommand(rest, {}, "cache").positionals, "cache");
      return verify(store);
    case "push":
      return (await import("./cache-transfer")).push(store, rest);
    case "pull":
      return (await import("./cache-transfer")).pull(store, rest);
    case "keygen":
      return (await import("./cache-keygen")).keygen(rest);
    default:
      throw new UsageError(`unknown cache command "${sub}"${didYouMean(sub, ["ls", "stats", "prune", "verify", "push", "pull", "keygen"], (name) => `\`castle cache ${name}\``)}`, "cache");
  }
}

function list(store: LocalStore, argv: string[]): number {
  const { values, positionals } = parseCommand(argv, { json: { type: "boolean" } }, "cache");
  noPositionals(positionals, "cache");
  const records = store.records().sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  if (values.json) {
    process.stdout.write(JSON.stringify(records, null, 2) + "\n");
    return EXIT.ok;
  }
  for (const r of records) {
    process.stdout.write(`${r.name.padEnd(24)} ${r.key.slice(0, 12)} → ${r.digest.slice(0, 12)}  ${formatBytes(r.bytes).padStart(9)}  ${r.origin.padEnd(6)} ${r.createdAt}\n`);
  }
  return EXIT.ok;
}

function stats(store: LocalStore): number {
  const t = readTotals(store);
  const records = store.records();
  const trees = new Set(records.map((r) => r.digest)).size;
  const lookups = t.layersCached + t.layersPulled + t.layersBuilt;
  const hitRate = lookups === 0 ? 0 : ((t.layersCached + t.layersPulled) / lookups) * 100;
  process.stdout.write(
    [
      `store         ${store.root}`,
      `size          ${formatBytes(diskUsage(store.root))} (${records.length} keys, ${trees} trees)`,
      `builds        ${t.builds} recorded`,
      `layers        ${t.layersCached} cached, ${t.layersPulled} pulled, ${t.layersBuilt} built (hit rate ${hitRate.toFixed(0)}%)`,
      `transferred   ${formatBytes(t.pulledBytes)} pulled, ${formatBytes(t.pushedBytes)} pushed`,
      `time saved    ${formatMs(t.savedMs)} of build time`,
    ].join("\n") + "\n",
  );
  return EXIT.ok;
}

async function prune(store: LocalStore, argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    { "keep-days": { type: "string" }, "max-size": { type: "string" }, "dry-run": { type: "boolean" } },
    "cache",
  );
  noPositionals(positionals, "cache");
  const days = values["keep-days"] === undefined ? 30 : Number(values["keep-days"]);
  if (!(days >= 0)) throw new UsageError(`--keep-days takes a number, got "${values["keep-days"]}"`, "cache");
  const paths = castlePaths();
  const running = new InstanceRegistry(paths.state).list().map((instance) => instance.system);
  const result = await pruneStore(store, {
    keepForMs: days * 86400e3,
    keepSystems: running,
    nested: nestedStores(paths.data, new Set(running)),
    onWait: () => process.stderr.write("castle: waiting for running builds to finish before pruning…\n"),
    ...(values["max-size"] !== undefined ? { maxBytes: parseBytes(values["max-size"], "--max-size", "cache") } : {}),
    dryRun: Boolean(values["dry-run"]),
  });
  // Every fast-path entry names the prune generation this prune moved: none can be used again.
  if (!values["dry-run"]) clearEntries(store);
  process.stdout.write(
    `${values["dry-run"] ? "would remove" : "removed"} ${result.removedRecords} keys and ${result.removedTrees} trees (${formatBytes(result.freedBytes)}); kept ${formatBytes(result.keptBytes)}` +
      (result.heldBytes > 0 ? ` (${formatBytes(result.heldBytes)} held by running systems)` : "") + "\n",
  );
  return EXIT.ok;
}

function verify(store: LocalStore): number {
  const result = verifyStore(
    store,
    (digest, ok) => {
      if (!ok) process.stderr.write(`corrupt: ${digest}\n`);
    },
    (key, why) => process.stderr.write(`damaged record: ${key}: ${why}\n`),
  );
  process.stdout.write(`checked ${result.checked} trees: ${result.corrupt.length} corrupt, ${result.removedRecords} keys removed\n`);
  return result.corrupt.length === 0 && result.damaged.length === 0 ? EXIT.ok : EXIT.cache;
}
