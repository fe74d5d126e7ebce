// Owns `castle ps`: the running instances, one per line (or JSON), and where the sources edited
// inside them (`castle edit`) live on the host.

import { EXIT } from "../context/exit-codes";
import { InstanceRegistry } from "../context/instances";
import { noPositionals, parseCommand } from "../context/options";
import { castlePaths } from "../context/paths";
import { hostPath, readEdits } from "../inside/inside-info";

const HELP = `usage: castle ps [--json]

Lists running instances: id, system, host pid, age and command. Stale entries (an instance whose
process died without cleaning up) are removed. Then the sources edited inside them (\`castle
edit\`), with the directory that holds each on the host: build with it there too through
CASTLE_OVERRIDE_<source>=<dir>. Inside a system, lists the instances started inside it.

examples:
  castle ps
  castle ps --json | jq -r '.[].id'
`;

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, { json: { type: "boolean" }, help: { type: "boolean", short: "h" } }, "ps");
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  noPositionals(positionals, "ps");
  const instances = new InstanceRegistry(castlePaths().state).list();
  const edits = instances.map((i) => ({ id: i.id, sources: editedSources(i.inside) }));
  if (values.json) {
    const byId = new Map(edits.map((e) => [e.id, e.sources]));
    process.stdout.write(JSON.stringify(instances.map((i) => ({ ...i, edits: byId.get(i.id) ?? [] })), null, 2) + "\n");
    return EXIT.ok;
  }
  const rows = [["ID", "SYSTEM", "PID", "AGE", "COMMAND"]];
  for (const i of instances) {
    rows.push([i.id, i.system, String(i.pid), age(Date.parse(i.startedAt)), i.command.join(" ")]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  process.stdout.write(rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join("  ")).join("\n") + "\n");
  const edited = edits.flatMap((e) => e.sources.map((s) => `  ${e.id}  ${s.name}  ${s.host}`));
  if (edited.length > 0) {
    process.stdout.write(`edited sources (build with one here: CASTLE_OVERRIDE_<source>=<dir>):\n${edited.join("\n")}\n`);
  }
  return EXIT.ok;
}

/** An instance's edited sources with their directories on the host. */
function editedSources(inside: { edits: string; hostPaths: Record<string, string> } | undefined): { name: string; inside: string; host: string }[] {
  if (!inside) return [];
  const info = { instance: "", run: [], edits: inside.edits, editDir: "", hostPaths: inside.hostPaths };
  return Object.entries(readEdits(inside.edits).sources)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, dir]) => ({ name, inside: dir, host: hostPath(dir, info) }));
}

function age(since: number): string {
  const s = Math.max(0, Math.round((Date.now() - since) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}
