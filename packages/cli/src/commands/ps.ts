// Owns `castle ps`: the running instances, one per line (or JSON).

import { EXIT } from "../context/exit-codes";
import { InstanceRegistry } from "../context/instances";
import { noPositionals, parseCommand } from "../context/options";
import { castlePaths } from "../context/paths";

const HELP = `usage: castle ps [--json]

Lists running instances: id, system, host pid, age and command. Stale entries (an instance whose
process died without cleaning up) are removed.

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
  if (values.json) {
    process.stdout.write(JSON.stringify(instances, null, 2) + "\n");
    return EXIT.ok;
  }
  const rows = [["ID", "SYSTEM", "PID", "AGE", "COMMAND"]];
  for (const i of instances) {
    rows.push([i.id, i.system, String(i.pid), age(Date.parse(i.startedAt)), i.command.join(" ")]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  process.stdout.write(rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join("  ")).join("\n") + "\n");
  return EXIT.ok;
}

function age(since: number): string {
  const s = Math.max(0, Math.round((Date.now() - since) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}
