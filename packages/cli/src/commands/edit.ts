// Owns `castle edit`, inside a system Castle runs: put a declared source's pinned, verified files
// at ~/src/<source> and make every Castle build inside use them (as CASTLE_OVERRIDE_<source>
// would: recorded in the system's edits file, which the Castle inside reads on every build);
// list the edits, say where they live on the host, or stop using one (its files stay).

import { existsSync } from "node:fs";
import { CastleError } from "@castle/errors";
import { normaliseSourceName } from "@castle/graph";
import { EXIT } from "../context/exit-codes";
import { parseCommand, systemFlags } from "../context/options";
import { prepareSystem } from "../context/prepare";
import { UsageError } from "../context/usage-error";
import { isEmptyDir, placeSourceFiles } from "../inside/edit-files";
import { hostPath, insideInfo, readEdits, writeEdits, type InsideInfo } from "../inside/inside-info";
import { findSource, pinnedSourceTree } from "../inside/source-names";

const HELP = `usage: castle edit <source> [<git-url|dir> [branch] [subdir]]
       castle edit [--where] [<source>]
       castle edit --stop <source>

Inside a system started by \`castle run\`: puts the pinned, verified files of a source the system
declares at ~/src/<source> (kept as they are if already there) and makes every \`castle run\`,
\`build\` and \`why\` inside use them instead of the pinned source, as CASTLE_OVERRIDE_<source>
would. The definition is the one the system was started from (~/castle-src) unless given.
~/src is kept with the system's state, so edits survive exits and rebuilds.

With no source, lists the edited sources. --where prints where an edited source lives on the
host, to build with it there too (CASTLE_OVERRIDE_<source>=<that dir> castle run ...).

examples:
  castle edit musl-src
  cp ~/castle-src/examples/distro/patches/rip-exit.c ~/src/musl-src/src/exit/_Exit.c
  castle run ~/castle-src examples/distro -- sh -c 'exit 3'
  castle edit --where musl-src
  castle edit --stop musl-src

options:
  --where      print where the edited sources live on the host
  --stop       build with the pinned source again (the files in ~/src stay)
  --offline    use the cached checkout of a git definition, no network
  -h, --help   this help
`;

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    { where: { type: "boolean" }, stop: { type: "boolean" }, offline: { type: "boolean" }, help: { type: "boolean", short: "h" } },
    "edit",
  );
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  const info = insideInfo();
  if (!info) {
    throw new UsageError(
      "castle edit works inside a system started by `castle run`; on the host, use `castle source <definition> --name <source> --out <dir>` and CASTLE_OVERRIDE_<source>=<dir>",
      "edit",
    );
  }
  const [name, ...definition] = positionals;
  if (values.stop) {
    if (!name || definition.length > 0) throw new UsageError("--stop takes one source name", "edit");
    return stop(info, name);
  }
  if (name === undefined || values.where) {
    if (definition.length > 0) throw new UsageError(`unexpected arguments: ${definition.join(" ")}`, "edit");
    return list(info, name, Boolean(values.where));
  }
  const flags = systemFlags({ offline: values.offline }, process.env, "edit");
  const prepared = await prepareSystem(definition, { ...flags, overrides: {} }, "edit");
  const source = findSource(prepared.graph, name, "CASTLE_USAGE", "castle edit");
  const dest = `${info.editDir}/${source.name}`;
  if (existsSync(dest) && !isEmptyDir(dest)) {
    process.stderr.write(`castle: ${source.name} is already at ${dest}: kept as it is\n`);
  } else {
    await placeSourceFiles(await pinnedSourceTree(prepared.graph, prepared.store, source.name, "CASTLE_USAGE", "castle edit"), dest);
  }
  const edits = readEdits(info.edits);
  edits.sources[source.name] = dest;
  writeEdits(info.edits, edits);
  process.stdout.write(`${dest}\n`);
  process.stderr.write(
    `castle: every build in this system now uses ${dest} for ${source.name} (as CASTLE_OVERRIDE_${normaliseSourceName(source.name)}); ` +
      `\`castle edit --stop ${source.name}\` goes back to the pinned one\n` +
      `on the host it is ${hostPath(dest, info)}\n`,
  );
  return EXIT.ok;
}

function list(info: InsideInfo, name: string | undefined, where: boolean): number {
  const sources = readEdits(info.edits).sources;
  const names = name === undefined ? Object.keys(sources).sort() : Object.keys(sources).filter((n) => normaliseSourceName(n) === normaliseSourceName(name));
  if (name !== undefined && names.length === 0) {
    throw new CastleError("CASTLE_USAGE", `${name} is not an edited source in this system`, {
      hint: `edit it first: \`castle edit ${name}\`${Object.keys(sources).length ? `; edited: ${Object.keys(sources).join(", ")}` : ""}`,
    });
  }
  for (const n of names) {
    const host = hostPath(sources[n]!, info);
    if (where) {
      process.stdout.write(`${host}\n`);
      process.stderr.write(`on the host: CASTLE_OVERRIDE_${normaliseSourceName(n)}=${host} castle run ${info.run.join(" ")}\n`);
    } else {
      process.stdout.write(`${n}\t${sources[n]}\t${host}\n`);
    }
  }
  return EXIT.ok;
}

function stop(info: InsideInfo, name: string): number {
  const edits = readEdits(info.edits);
  const key = Object.keys(edits.sources).find((n) => normaliseSourceName(n) === normaliseSourceName(name));
  if (key === undefined) {
    throw new CastleError("CASTLE_USAGE", `${name} is not an edited source in this system`, { hint: "see `castle edit`" });
  }
  const dir = edits.sources[key]!;
  delete edits.sources[key];
  writeEdits(info.edits, edits);
  process.stderr.write(`castle: builds in this system use the pinned ${key} again; its files stay in ${dir}\n`);
  return EXIT.ok;
}
