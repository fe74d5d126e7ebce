// Owns `castle cache`: look at and tend the local store (ls, stats, prune, verify) and move
// layers between it and a remote cache (push, pull).

import { diskUsage, pruneStore, verifyStore, type KeyRecord, type LocalStore } from "@castle/cache/store";
import { EXIT } from "../context/exit-codes";
import { readTotals } from "../context/cache-stats";
import { noPositionals, parseCommand, SYSTEM_OPTIONS, systemFlags } from "../context/options";
import { castlePaths, openCastleStore } from "../context/paths";
import { InstanceRegistry } from "../context/instances";
import { buildPrepared, openRemoteCache, prepareSystem } from "../context/prepare";
import { parseBytes } from "../context/resources";
import { UsageError } from "../context/usage-error";
import { formatBytes, formatDuration as formatMs } from "../ui/format";

const HELP = `usage: castle cache <ls|stats|prune|verify|push|pull> [options]

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
  push s3://bucket/prefix              upload every local layer the remote lacks
  pull s3://bucket/prefix [<git-url|dir> [branch] [subdir]]
                                       download the layers a system needs (building what the
                                       remote lacks), or with no system, every layer it has

examples:
  castle cache prune --max-size 20G
  castle cache push s3://team-cache/castle
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
      return push(store, rest);
    case "pull":
      return pull(store, rest);
    default:
      throw new UsageError(`unknown cache command "${sub}"`, "cache");
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
  const running = new InstanceRegistry(castlePaths().state).list().map((instance) => instance.system);
  const result = await pruneStore(store, {
    keepForMs: days * 86400e3,
    keepSystems: running,
    onWait: () => process.stderr.write("castle: waiting for running builds to finish before pruning…\n"),
    ...(values["max-size"] !== undefined ? { maxBytes: parseBytes(values["max-size"], "--max-size", "cache") } : {}),
    dryRun: Boolean(values["dry-run"]),
  });
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

async function push(store: LocalStore, argv: string[]): Promise<number> {
  const { positionals } = parseCommand(argv, {}, "cache");
  if (positionals.length !== 1) throw new UsageError("cache push takes one remote URL (s3://bucket/prefix)", "cache");
  const remote = (await openRemoteCache(positionals[0], store))!;
  // Oldest first: a layer is always created after the layers it was built on.
  const records = store.records().sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  let uploaded = 0;
  let skipped = 0;
  for (const record of records) {
    const result = await remote.push(record, store, { name: record.name });
    uploaded += result.uploadedBytes;
    if (result.skipped) skipped++;
    process.stderr.write(`${result.skipped ? "present" : "pushed "} ${record.name} ${record.key.slice(0, 12)}\n`);
  }
  process.stdout.write(`pushed ${records.length - skipped} keys (${formatBytes(uploaded)}); ${skipped} were already there\n`);
  return EXIT.ok;
}

async function pull(store: LocalStore, argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, SYSTEM_OPTIONS, "cache");
  const [url, ...target] = positionals;
  if (!url) throw new UsageError("cache pull takes a remote URL (s3://bucket/prefix)", "cache");
  if (target.length > 0) {
    const flags = { ...systemFlags(values, process.env, "cache"), importCaches: [url] };
    const outcome = await buildPrepared(await prepareSystem(target, flags, "cache", true));
    process.stdout.write(`${outcome.stats.pulled} pulled, ${outcome.stats.cached} already here, ${outcome.stats.built} built\n`);
    return EXIT.ok;
  }
  const remote = (await openRemoteCache(url, store))!;
  let pulled = 0;
  let present = 0;
  const records: KeyRecord[] = [];
  for await (const manifest of remote.list()) {
    if (store.lookup(manifest.key)) {
      present++;
      continue;
    }
    const record = await remote.pull(manifest.key, store, { name: manifest.name });
    if (record) {
      records.push(record);
      pulled++;
      process.stderr.write(`pulled ${manifest.name} ${manifest.key.slice(0, 12)}\n`);
    }
  }
  process.stdout.write(`pulled ${pulled} keys; ${present} were already here\n`);
  return EXIT.ok;
}
