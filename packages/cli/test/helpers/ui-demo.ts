// Owns a runnable demo of the TTY progress view: feeds the scripted build's events, on timers and
// with bursts of log lines, into createReporter({ mode: "tty" }) on stderr, then closes it and lets
// the process exit by itself. Run under a pseudo-terminal by ui-tty.test.ts, or by hand:
//   npx tsx packages/cli/test/helpers/ui-demo.ts [--fail] [--burst N] [--speed X]

import { createReporter } from "../../src/ui/reporter";
import { scriptedBuild } from "./ui-scripted-build";

function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(name);
  const value = index >= 0 ? Number(process.argv[index + 1]) : NaN;
  return Number.isFinite(value) ? value : fallback;
}

const fail = process.argv.includes("--fail");
/** Log lines emitted at once for each scripted one, to show redraws do not follow the log rate. */
const burst = option("--burst", 500);
/** How much faster than the script's clock to play it. */
const speed = option("--speed", 2);

const progress = await createReporter({ mode: "tty", stream: process.stderr });
const started = Date.now();
for (const step of scriptedBuild({ fail, logLinesPerBuild: 8 })) {
  const wait = step.at / speed - (Date.now() - started);
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  if (step.event.type === "log") {
    for (let i = 1; i < burst; i++) progress.onEvent({ ...step.event, line: `${step.event.line} (burst ${i})` });
  }
  progress.onEvent(step.event);
}
await progress.close();
process.stdout.write(`ui-demo: closed after ${Date.now() - started} ms\n`);
