// `castle shell` on a real pseudo-terminal (util-linux `script`), as uid 65534: an interactive
// login shell in the system with job control — a background job, `jobs`, Ctrl-C stopping only the
// foreground command — whose exit status is castle's, and the terminal's mode restored after.
// Also `castle run` of a command that asks whether it has a terminal, with and without one.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliWorld, cliMissing, definition, type CliHome } from "./helpers/cli-harness";
import { scriptMissing, Terminal } from "./helpers/cli-pty";

const skip = cliMissing() ?? scriptMissing();
if (skip) console.warn(`skipping cli-shell: ${skip}`);

describe.skipIf(skip)("castle shell on a terminal", () => {
  let world: CliWorld;
  let home: CliHome;
  let def: string;

  beforeAll(async () => {
    world = CliWorld.create();
    home = world.home();
    def = world.dir("def", {
      "castle.ts": definition(
        world.rootfs,
        `export default system({ name: "shelly", layers: [base], env: { PS1: "shelly$ " }, entrypoint: ["/bin/sh", "-c", "test -t 0 && echo tty || echo no-tty"] });`,
      ),
    });
    expect((await home.run(["build", def])).code).toBe(0);
  });
  afterAll(() => world?.dispose("cli-shell"));

  it("gives an interactive shell with job control, and restores the terminal", async () => {
    const before = join(home.dir, "stty-before");
    const after = join(home.dir, "stty-after");
    const term = new Terminal(home, ["shell", def], { before: `stty -g > ${before}`, after: `stty -g > ${after}` });
    try {
      let at = await term.expect(/shelly\$ /);
      term.type("echo in-$(hostname) as $(id -u) at $PWD\n");
      at = await term.expect(/in-shelly as 0 at \/root/, at);
      at = await term.expect(/shelly\$ /, at);
      term.type("sleep 100 &\n");
      at = await term.expect(/shelly\$ /, at);
      term.type("jobs\n");
      at = await term.expect(/\[1\]\+?\s+Running\s+sleep 100/, at);
      at = await term.expect(/shelly\$ /, at);
      term.type("sleep 200\n");
      await new Promise((r) => setTimeout(r, 300));
      term.type("\x03"); // ^C: SIGINT to the foreground job only; the shell lives on
      at = await term.expect(/shelly\$ /, at);
      term.type("echo alive-$((40+2)); jobs\n");
      at = await term.expect(/alive-42/, at);
      at = await term.expect(/\[1\]\+?\s+Running\s+sleep 100/, at);
      term.type("exit 3\n");
      expect(await term.status()).toBe(3);
    } finally {
      term.kill();
    }
    expect(readFileSync(before, "utf8")).toMatch(/^[0-9a-f:]+\n$/);
    expect(readFileSync(after, "utf8")).toBe(readFileSync(before, "utf8"));
  });

  it("castle run gives the command the terminal when there is one", async () => {
    const term = new Terminal(home, ["run", def]);
    try {
      expect(await term.status()).toBe(0);
    } finally {
      term.kill();
    }
    expect(term.text).toMatch(/^tty$/m);
    const piped = await home.run(["run", def]);
    expect(piped.stdout).toBe("no-tty\n");
  });
});
