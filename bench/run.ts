// Owns `npm run bench`: runs every benchmark in bench/ (each side by side with its peer in one
// run), collects their rows into one markdown table with medians and ratios, writes it to
// bench/results/latest.md and into the README between the bench markers.
// Run: npm run bench [-- name-filter]   (a filtered run replaces only its own sections)

import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { markdownTable, type BenchRow } from "./lib/rows";

const here = import.meta.dirname;
const root = resolve(here, "..");
const filter = process.argv[2];

interface BenchModule {
  main(): Promise<BenchRow[]>;
}

const files = readdirSync(here)
  .filter((f) => f.endsWith(".ts") && f !== "run.ts")
  .filter((f) => !filter || f.includes(filter))
  .sort();

const sections: string[] = [];
for (const file of files) {
  const started = Date.now();
  process.stderr.write(`bench: ${file}…\n`);
  try {
    const module = (await import(join(here, file))) as Partial<BenchModule>;
    if (typeof module.main !== "function") continue;
    const rows = await module.main();
    sections.push(`### ${file.replace(/\.ts$/, "")}\n\n${markdownTable(rows)}\n`);
    process.stderr.write(`bench: ${file} done in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  } catch (error) {
    sections.push(`### ${file.replace(/\.ts$/, "")}\n\nfailed: ${(error as Error).message.split("\n")[0]}\n`);
    process.stderr.write(`bench: ${file} failed: ${(error as Error).stack}\n`);
  }
}

const cpu = readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.*)/)?.[1] ?? "unknown CPU";
const header = `Measured ${new Date().toISOString().slice(0, 10)} on ${cpu.trim()}, ${readFileSync("/proc/cpuinfo", "utf8").split("processor").length - 1} cores, Node ${process.version}. Medians of interleaved runs; ratio = Castle ÷ peer (below 1: Castle is faster). Rows whose peer says "target" compare with the stated goal, not a tool.\n`;
const latest = join(here, "results", "latest.md");
// A filtered run replaces its own sections and keeps the others from the last report.
const earlier = filter ? sectionsOf(readIfExists(latest)) : new Map<string, string>();
for (const section of sections) earlier.set(section.split("\n", 1)[0]!, section);
const merged = filter ? [...earlier.values()] : sections;
const report = `${header}\n${merged.join("\n")}`;
mkdirSync(join(here, "results"), { recursive: true });
writeFileSync(latest, report);
process.stdout.write(report);

const readme = join(root, "README.md");
const text = readFileSync(readme, "utf8");
const start = "<!-- bench:start -->";
const end = "<!-- bench:end -->";
const a = text.indexOf(start);
const b = text.indexOf(end);
if (a >= 0 && b > a) writeFileSync(readme, `${text.slice(0, a + start.length)}\n${report}\n${text.slice(b)}`);

function readIfExists(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

/** The "### name" sections of a report, by heading line, in order. */
function sectionsOf(report: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of report.split(/^(?=### )/m).slice(1)) out.set(part.split("\n", 1)[0]!, part.trimEnd() + "\n");
  return out;
}
