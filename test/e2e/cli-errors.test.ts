// The errors a user meets on the command line and in castle.ts, through the bundled binary: each
// is one `castle: …` line (plus at most a `hint: …` line), never a stack trace, with the exit
// status the `castle --help` table promises — 2 for a bad command line, 3 for a bad definition.

import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliWorld, cliMissing, definition, type CliHome, type CliResult } from "./helpers/cli-harness";

const skip = cliMissing();
if (skip) console.warn(`skipping cli-errors: ${skip}`);

/** One `castle: …` line, optionally one `hint: …` line, and nothing else. */
function expectOneLineError(r: CliResult, code: number, message: RegExp): void {
  const lines = r.stderr.split("\n").filter(Boolean);
  expect(r.code, r.stderr).toBe(code);
  expect(lines[0]).toMatch(/^castle: /);
  expect(lines[0]).toMatch(message);
  expect(lines.length, r.stderr).toBeLessThanOrEqual(2);
  if (lines[1] !== undefined) expect(lines[1]).toMatch(/^hint: /);
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
}

describe.skipIf(skip)("error messages and exit statuses", () => {
  let world: CliWorld;
  let home: CliHome;
  let good: string;
  const bad: Record<string, string> = {};

  beforeAll(() => {
    world = CliWorld.create();
    home = world.home();
    good = world.dir("good", {
      "castle.ts": definition(world.rootfs, `export default system({ name: "good", layers: [base] });`),
      "src/README": "a source to override\n",
    });
    const defs: Record<string, string> = {
      syntax: `import { layer, system } from "castle";\nexport default system({ name: "x", layers: [layer({ name: "a", script: "true" )] });\n`,
      badName: `import { layer, system } from "castle";\nconst a = layer({ name: "bad name!", script: "true" });\nexport default system({ name: "x", layers: [a] });\n`,
      noDefault: `import { system } from "castle";\nexport const notASystem = 1;\n`,
      throws: `import { system } from "castle";\nthrow new Error("boom while loading");\n`,
      cycle: `import { layer, system } from "castle";\nconst a = layer({ name: "a", runDeps: ["b"], script: "true" });\nconst b = layer({ name: "b", runDeps: ["a"], script: "true" });\nexport default system({ name: "x", layers: [a, b] });\n`,
      missingDep: `import { layer, system } from "castle";\nconst a = layer({ name: "a", runDeps: ["ghost"], script: "true" });\nexport default system({ name: "x", layers: [a] });\n`,
      badImport: `import { system } from "castle";\nimport { helper } from "./nope";\nexport default system({ name: "x", layers: [helper] });\n`,
    };
    for (const [name, text] of Object.entries(defs)) bad[name] = world.dir(`bad-${name}`, { "castle.ts": text });
    world.dir("no-castle-ts", { "README": "nothing\n" });
  });
  afterAll(() => world?.dispose("cli-errors"));

  it("a syntax error names the file, line and column (3)", async () => {
    const r = await home.run(["build", bad.syntax!]);
    expectOneLineError(r, 3, /castle\.ts:2:\d+: Expected "\}" but found "\)"/);
  });

  it("a bad option names where it was declared (3)", async () => {
    expectOneLineError(await home.run(["build", bad.badName!]), 3, /^castle: \S*castle\.ts:2:\d+: layer name "bad name!" is invalid/);
  });

  it("a castle.ts without a default-exported system (3)", async () => {
    expectOneLineError(await home.run(["run", bad.noDefault!]), 3, /must `export default system\(\{ \.\.\. \}\)`/);
  });

  it("a castle.ts that throws while loading names the line (3)", async () => {
    expectOneLineError(await home.run(["run", bad.throws!]), 3, /castle\.ts:2:\d+: boom while loading/);
  });

  it("graph errors: a cycle, a missing dependency, a missing import (3)", async () => {
    expectOneLineError(await home.run(["build", bad.cycle!]), 3, /castle\.ts:[23]:\d+: dependency cycle: (a → b → a|b → a → b) \(/);
    expectOneLineError(await home.run(["build", bad.missingDep!]), 3, /ghost/);
    expectOneLineError(await home.run(["build", bad.badImport!]), 3, /castle\.ts:2:\d+: Could not resolve "\.\/nope"/);
  });

  it("a directory without castle.ts, or no directory at all (3)", async () => {
    expectOneLineError(await home.run(["run", `${world.base}/no-castle-ts`]), 3, /^castle: no castle\.ts in /);
    expectOneLineError(await home.run(["run", `${world.base}/does-not-exist`]), 3, /is neither a directory nor a git URL/);
  });

  it("a path to castle.ts itself is taken as its directory", async () => {
    const r = await home.run(["build", join(good, "castle.ts")]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^[0-9a-f]{64}\n$/);
  });

  it("an override of a source the system does not have lists the ones it has (3)", async () => {
    const r = await home.run(["run", good, "--override", "nosuch=/tmp"]);
    expectOneLineError(r, 3, /no source named "nosuch"/);
    expect(r.stderr).toMatch(/^hint: its sources are: rootfs$/m);
    const env = await home.run(["run", good], { env: { CASTLE_OVERRIDE_nosuch: "/tmp" } });
    expectOneLineError(env, 3, /no source named "nosuch"/);
  });

  it("bad command lines exit 2 and point at the command's --help", async () => {
    const cases: [string[], RegExp][] = [
      [["frobnicate"], /unknown command "frobnicate"$/m],
      [["bild", good], /^castle: unknown command "bild" \(did you mean `castle build`\?\)$/],
      [["run"], /which system\?/],
      [["run", good, "--bogus"], /^castle: unknown option --bogus$/],
      [["run", good, "--plian"], /^castle: unknown option --plian \(did you mean --plain\?\)$/],
      [["build", good, "--rebiuld", "x"], /^castle: unknown option --rebiuld \(did you mean --rebuild\?\)$/],
      [["build", good, "--plain=yes"], /--plain' does not take an argument/],
      [["build", good, "--jobs"], /--jobs <value>' argument missing/],
      [["run", good, "--pids", "-3"], /--pids needs a value \(for one that starts with "-", write --pids=VALUE\)/],
      [["run", good, "-j", "0"], /--jobs takes a positive integer, got "0"/],
      [["build", good, "--jobs", "many"], /--jobs takes a positive integer/],
      [["run", good, "--override", "noequals"], /--override takes name=dir/],
      [["run", good, "--network", "wifi"], /--network is host or none/],
      [["run", good, "--memory", "lots"], /--memory takes a size like 512M/],
      [["run", good, "--pids=-3"], /--pids takes a positive integer/],
      [["run", good, "--cpus", "0"], /--cpus takes a positive number/],
      [["run", good, "main", "sub", "extra"], /unexpected arguments: extra/],
      [["export", good], /give exactly one of --tar FILE or --oci DIR/],
      [["why", good, "--layer", "nope"], /has no layer "nope"/],
      [["why", good, "--layer", "bsae"], /has no layer "bsae" \(did you mean "base"\?\)/],
      [["cache", "frob"], /unknown cache command "frob"$/m],
      [["cache", "prnue"], /unknown cache command "prnue" \(did you mean `castle cache prune`\?\)/],
      [["cache", "prune", "--keep-days", "soon"], /--keep-days takes a number/],
      [["cache", "push"], /cache push takes one remote URL/],
      [["kill"], /give one instance id/],
      [["kill", "x", "--signal", "BOGUS"], /unsupported signal "BOGUS"/],
      [["ps", "extra"], /unexpected arguments: extra/],
      [["exec"], /which instance\?/],
      [["exec", "some-id", "stray"], /unexpected arguments: stray \(put the command after --\)/],
      [["exec", "some-id", "--env", "NOVALUE"], /--env takes NAME=VALUE/],
      [["shell", good, "--", "ls"], /castle shell takes no command/],
    ];
    for (const [args, message] of cases) {
      const r = await home.run(args);
      expectOneLineError(r, 2, message);
      const command = args[0] === "frobnicate" || args[0] === "bild" ? "" : `${args[0]} `;
      expect(r.stderr, args.join(" ")).toContain(`hint: see \`castle ${command}--help\``);
    }
  });

  it("castle with no command prints the usage and exits 2", async () => {
    const r = await home.run([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/^castle: build whole Linux systems/);
    expect(r.stdout).toMatch(/exit status:\n {2}0 {4}success/);
  });

  it("kill of an instance that does not exist exits 6", async () => {
    expectOneLineError(await home.run(["kill", "nothing-here"]), 6, /no running instance "nothing-here"/);
  });
});
