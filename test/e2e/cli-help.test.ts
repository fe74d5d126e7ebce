// `--help` of `castle` and of every command, through the bundled binary as uid 65534: usage on
// stdout, examples, exit 0 (-h too), nothing on stderr; `castle --help` lists every command and
// the exit statuses; --version. Help never needs a store, so these run in a home with nothing.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliWorld, cliMissing, type CliHome } from "./helpers/cli-harness";

const skip = cliMissing();
if (skip) console.warn(`skipping cli-help: ${skip}`);

const COMMANDS = ["run", "shell", "build", "why", "exec", "ps", "kill", "cache", "export", "source", "config"];

describe.skipIf(skip)("castle --help", () => {
  let world: CliWorld;
  let home: CliHome;

  beforeAll(() => {
    world = CliWorld.create();
    home = world.home();
  });
  afterAll(() => world?.dispose("cli-help"));

  it("castle --help lists every command and the exit statuses", async () => {
    const r = await home.run(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    for (const command of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^ {2}${command} `, "m"));
    for (const status of [0, 1, 2, 3, 4, 5, 6, 125, 126, 127, 130]) expect(r.stdout).toMatch(new RegExp(`^ {2}${status} +\\S`, "m"));
    expect((await home.run(["-h"])).stdout).toBe(r.stdout);
    expect((await home.run(["help"])).stdout).toBe(r.stdout);
  });

  it("castle --version", async () => {
    const r = await home.run(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^castle \d+\.\d+\.\d+\n$/);
  });

  it.each(COMMANDS)("castle %s --help: usage and examples, exit 0", async (command) => {
    const r = await home.run([command, "--help"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(new RegExp(`^usage: castle ${command}\\b`));
    expect(r.stdout).toMatch(/^examples:\n(?: {2}.*castle .*\n)+/m);
    expect(r.stdout).not.toMatch(/\t/);
    const short = await home.run([command, "-h"]);
    expect(short.stdout).toBe(r.stdout);
  });

  it("castle shell's help is its own", async () => {
    const r = await home.run(["shell", "--help"]);
    expect(r.stdout).not.toMatch(/castle run|-- command|-- \/bin\/sh/);
    expect(r.stdout).toMatch(/login shell/);
  });
});
