// Reliability: signals and exits, through the real `castle` binary as uid 65534. A signal sent
// to `castle run` (kill -INT, a supervisor's TERM) reaches the system's command as `docker run`
// passes it on, and a terminal's Ctrl-C still does, with a tty and without one. SIGHUP during a
// build cancels it like Ctrl-C: the same message, and nothing left in the store's tmp. `castle
// kill` stops an interactive shell at once (SIGHUP, which a shell obeys), keeps the grace short
// for an idle command that ignores its signal, and writes only to its own stderr: the shell's
// terminal shows nothing more and gets its mode back.

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliWorld, cliMissing, definition, type CliHome, type Started } from "../e2e/helpers/cli-harness";
import { scriptMissing, Terminal } from "../e2e/helpers/cli-pty";

const skip = cliMissing() ?? scriptMissing();
if (skip) console.warn(`skipping signals tests: ${skip}`);

/** A command that reports SIGINT and exits 7 on it; "ready" once the trap is set. */
const TRAPS_INT = ["/bin/sh", "-c", "trap 'echo caught-INT; exit 7' INT; echo ready; sleep 100 & wait"];

describe.skipIf(skip)("signals and exits", () => {
  let world: CliWorld;
  let home: CliHome;
  let def: string;
  const running: Started[] = [];

  /** The instance ids `castle ps` lists running `marker`. */
  const instanceOf = async (marker: string): Promise<string> => {
    for (let i = 0; i < 200; i++) {
      const r = await home.run(["ps", "--json"]);
      const entry = (JSON.parse(r.stdout) as { id: string; command: string[] }[]).find((e) => e.command.join(" ").includes(marker));
      if (entry) return entry.id;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`no instance running ${marker}`);
  };

  beforeAll(async () => {
    world = CliWorld.create();
    home = world.home();
    def = world.dir("def", {
      "castle.ts": definition(world.rootfs, `export default system({ name: "sig", layers: [base], env: { PS1: "sig$ " }, entrypoint: ["/bin/sh"] });`),
    });
    expect((await home.run(["build", def])).code).toBe(0);
  });
  afterAll(async () => {
    for (const s of running) s.child.kill("SIGKILL");
    await Promise.all(running.map((s) => s.exited));
    world?.dispose("signals");
  });

  it("kill -INT of castle run reaches the system's command (as docker run passes it on)", async () => {
    const started = home.start(["run", def, "--", ...TRAPS_INT]);
    running.push(started);
    await started.waitFor(/ready/);
    started.child.kill("SIGINT");
    const exit = await Promise.race([started.exited, new Promise<"still running">((r) => setTimeout(() => r("still running"), 5000))]);
    expect(exit).not.toBe("still running");
    expect(started.stdout).toBe("ready\ncaught-INT\n");
    expect(exit).toMatchObject({ code: 7 });
  });

  it("a terminal's Ctrl-C still reaches the command, with a tty and without one (output piped)", async () => {
    for (const pipe of [false, true]) {
      // Ctrl-C goes to the terminal's whole foreground group: the reader and the shell around
      // castle must outlive it (a trap, not an ignore: castle must not inherit that).
      const term = new Terminal(home, ["run", def, "--", ...TRAPS_INT], pipe ? { before: "trap true INT", pipeTo: `sh -c "trap '' INT; exec cat"` } : {});
      try {
        const at = await term.expect(/ready/);
        term.type("\x03");
        await term.expect(/caught-INT/, at);
        expect(await term.status()).toBe(pipe ? 0 : 7); // piped: the status is cat's
        expect(term.text.match(/caught-INT/g)).toHaveLength(1);
      } finally {
        term.kill();
      }
    }
  });

  it("SIGHUP during a build cancels it like Ctrl-C: the message, exit 129, nothing left in the store's tmp", async () => {
    const slow = world.dir("slow", {
      "castle.ts": definition(world.rootfs, `const slow = layer({ name: "slow", runDeps: [base], script: "echo begun; sleep 60" });
export default system({ name: "slow", layers: [slow] });`),
    });
    const started = home.start(["build", slow, "--plain", "-v"]);
    running.push(started);
    await started.waitFor(/begun/);
    started.child.kill("SIGHUP");
    const exit = await started.exited;
    expect(exit.code, started.stderr).toBe(129);
    expect(exit.stderr).toMatch(/^castle: interrupted \(SIGHUP\): nothing half-built was kept; what was done is cached$/m);
    const tmp = join(home.cacheDir, "tmp");
    expect(existsSync(tmp) ? readdirSync(tmp) : []).toEqual([]);
  });

  it("castle kill stops an interactive shell at once with SIGHUP, and writes nothing into its terminal", async () => {
    const before = join(home.dir, "stty-before");
    const after = join(home.dir, "stty-after");
    const term = new Terminal(home, ["shell", def], { before: `stty -g > ${before}`, after: `stty -g > ${after}` });
    try {
      const prompt = await term.expect(/sig\$ /);
      const id = await instanceOf("/bin/sh -l");
      const at = Date.now();
      const kill = await home.run(["kill", id]);
      expect(Date.now() - at).toBeLessThan(3000);
      expect(kill).toMatchObject({ code: 0, stdout: `${id}\n`, stderr: "" });
      expect(await term.status()).toBe(129); // the shell ended on SIGHUP, as on a closed terminal
      expect(term.text.slice(prompt).trim()).toBe("exit=129");
    } finally {
      term.kill();
    }
    expect(readFileSync(after, "utf8")).toBe(readFileSync(before, "utf8"));
  });

  it("castle kill keeps the grace short for an idle command that ignores its signal, and says so on its stderr", async () => {
    const started = home.start(["run", def, "--", "/bin/sh", "-c", "trap '' TERM; echo ready; sleep 305 & wait; wait"]);
    running.push(started);
    await started.waitFor(/ready/);
    const id = await instanceOf("sleep 305");
    const at = Date.now();
    const kill = await home.run(["kill", id]);
    const took = Date.now() - at;
    expect(took).toBeGreaterThanOrEqual(1000);
    expect(took).toBeLessThan(5000); // not the full 10 s
    expect(kill.stderr).toBe(`castle: ${id} did not stop after SIGTERM and sits idle; killing it\n`);
    const exit = await started.exited;
    expect(exit.code).toBe(137); // the sandbox's monitor reports its init killed
    expect(exit.stderr).toBe("");
  });
});
