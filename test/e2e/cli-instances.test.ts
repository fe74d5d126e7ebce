// Running instances through the bundled binary as uid 65534: `castle ps` lists a long-running
// one, `castle exec` runs commands inside it (on a terminal too), `castle kill` stops it (TERM,
// then KILL after the timeout), a second run of the same system is refused unless --ephemeral,
// entries under $XDG_STATE_HOME/castle/instances go away with their instance, and a SIGKILLed
// castle leaves a stale entry (or a half-written one) that ps detects and removes.

import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliWorld, cliMissing, definition, type CliHome, type Started } from "./helpers/cli-harness";
import { scriptMissing, Terminal } from "./helpers/cli-pty";

const skip = cliMissing();
if (skip) console.warn(`skipping cli-instances: ${skip}`);

interface PsEntry {
  id: string;
  system: string;
  pid: number;
  initPid: number;
  command: string[];
}

describe.skipIf(skip)("castle ps, kill and stale instances", () => {
  let world: CliWorld;
  let home: CliHome;
  let def: string;
  const running: Started[] = [];

  const ps = async (): Promise<PsEntry[]> => {
    const r = await home.run(["ps", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as PsEntry[];
  };
  /** Starts `castle run def args...` and waits until ps lists an instance running `marker`. */
  const startInstance = async (args: string[], marker: string): Promise<{ started: Started; entry: PsEntry }> => {
    const started = home.start(["run", def, ...args]);
    running.push(started);
    for (let i = 0; i < 200; i++) {
      const entry = (await ps()).find((e) => e.command.join(" ").includes(marker));
      if (entry) return { started, entry };
      if (started.child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`instance running ${marker} never appeared; castle said:\n${started.stdout}${started.stderr}`);
  };
  const instanceFiles = () => {
    const dir = join(home.stateDir, "instances");
    return existsSync(dir) ? readdirSync(dir) : [];
  };
  const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/\) [ZX] /.test(readProcStat(pid));

  beforeAll(async () => {
    world = CliWorld.create();
    home = world.home();
    def = world.dir("def", {
      "castle.ts": definition(
        world.rootfs,
        `const srv = layer({ name: "srv", runDeps: [base], script: "mkdir -p /srv" });
export default system({ name: "server", layers: [srv], entrypoint: ["/bin/sleep", "300"], env: { GREETING: "hi", PS1: "inside$ " }, cwd: "/srv" });`,
      ),
    });
    const build = await home.run(["build", def]);
    expect(build.code, build.stderr).toBe(0);
  });
  afterAll(async () => {
    for (const s of running) s.child.kill("SIGKILL");
    await Promise.all(running.map((s) => s.exited));
    world?.dispose("cli-instances");
  });

  it("ps lists a running instance and kill stops it", async () => {
    expect(await ps()).toEqual([]);
    const { started, entry } = await startInstance([], "sleep 300");
    expect(entry.system).toBe("server");
    expect(entry.id).toMatch(/^server-[0-9a-f]{6}$/);
    expect(entry.command).toEqual(["/bin/sleep", "300"]);
    expect(instanceFiles()).toEqual([`${entry.id}.json`]);

    const table = await home.run(["ps"]);
    expect(table.stdout).toMatch(/^ID +SYSTEM +PID +AGE +COMMAND\n/);
    expect(table.stdout).toMatch(new RegExp(`^${entry.id} +server +${entry.pid} +\\d+s +/bin/sleep 300$`, "m"));

    // A unique prefix of the id is enough.
    const kill = await home.run(["kill", entry.id.slice(0, 9)]);
    expect(kill.code, kill.stderr).toBe(0);
    expect(kill.stdout).toBe(`${entry.id}\n`);
    const exit = await started.exited;
    expect(exit.code).toBe(143); // the command's status: killed by SIGTERM
    expect(await ps()).toEqual([]);
    expect(instanceFiles()).toEqual([]);
    expect(alive(entry.initPid)).toBe(false);
  });

  it("refuses a second instance of the same system, unless --ephemeral", async () => {
    const { started, entry } = await startInstance(["--", "sleep", "301"], "sleep 301");
    const second = await home.run(["run", def, "--", "true"]);
    expect(second.code).toBe(2);
    expect(second.stderr).toBe(
      `castle: system server is already running as ${entry.id}\n` +
        `hint: a system runs once at a time (its files are shared): use \`castle exec ${entry.id}\` to join it, or --ephemeral to start a separate throwaway instance\n`,
    );
    const ephemeral = await startInstance(["--ephemeral", "--", "sleep", "302"], "sleep 302");
    expect((await ps()).map((e) => e.command.at(-1)).sort()).toEqual(["301", "302"]);
    // "server" now names two instances: kill wants one.
    const ambiguous = await home.run(["kill", "server"]);
    expect(ambiguous.code).toBe(6);
    expect(ambiguous.stderr).toMatch(/^castle: "server" matches 2 instances: /);

    expect((await home.run(["kill", ephemeral.entry.id, "--signal", "INT"])).code).toBe(0);
    expect((await ephemeral.started.exited).code).toBe(130);
    // With one instance left, the system's name finds it.
    expect((await home.run(["kill", "server"])).stdout).toBe(`${entry.id}\n`);
    expect((await started.exited).code).toBe(143);
    expect(instanceFiles()).toEqual([]);
  });

  it("kill escalates to SIGKILL when the command ignores the signal", async () => {
    const { started, entry } = await startInstance(["--", "sh", "-c", "trap '' TERM; sleep 303 & wait; wait"], "sleep 303");
    const at = Date.now();
    const kill = await home.run(["kill", entry.id, "--timeout", "1"]);
    expect(kill.code).toBe(0);
    expect(kill.stderr).toBe(`castle: ${entry.id} did not stop after SIGTERM; killing it\n`);
    expect(Date.now() - at).toBeGreaterThanOrEqual(1000);
    const exit = await started.exited;
    expect(exit.signal === "SIGKILL" || exit.code === 137 || exit.code === 143, `${exit.code} ${exit.signal}`).toBe(true);
    expect(await ps()).toEqual([]);
    for (let i = 0; i < 50 && alive(entry.initPid); i++) await new Promise((r) => setTimeout(r, 100));
    expect(alive(entry.initPid)).toBe(false);
  });

  it("detects and removes the entry of a castle that was SIGKILLed", async () => {
    const { started, entry } = await startInstance(["--", "sleep", "304"], "sleep 304");
    started.child.kill("SIGKILL"); // castle itself (setpriv execs node): no chance to clean up
    await started.exited;
    expect(instanceFiles()).toEqual([`${entry.id}.json`]);
    // The sandbox is tied to castle's life: it goes too, and ps then drops the entry.
    for (let i = 0; i < 50 && alive(entry.initPid); i++) await new Promise((r) => setTimeout(r, 100));
    expect(alive(entry.initPid)).toBe(false);
    expect(await ps()).toEqual([]);
    expect(instanceFiles()).toEqual([]);
    // kill of it is "no such instance", and the system runs again (leftover work dir cleared).
    expect((await home.run(["kill", entry.id])).code).toBe(6);
    const again = await home.run(["run", def, "--", "echo", "again"]);
    expect(again.stdout).toBe("again\n");
    expect(again.code).toBe(0);
  });

  it("an entry whose pid now belongs to another process is stale too", async () => {
    const dir = join(home.stateDir, "instances");
    const fake = { id: "server-000000", system: "server", pid: process.pid, initPid: process.pid, pidStart: 1, command: ["x"], startedAt: new Date().toISOString(), definition: def };
    writeFileSync(join(dir, "server-000000.json"), JSON.stringify(fake));
    writeFileSync(join(dir, "garbage.json"), "{ not json");
    expect(await ps()).toEqual([]);
    expect(instanceFiles()).toEqual(["garbage.json"]); // unreadable entries are skipped, not trusted
    rmSync(join(dir, "garbage.json"));
    // An entry a castle was writing when it was killed (its atomic write's temp file) goes too;
    // one whose writer lives (this test process, say) is left to it.
    const gone = spawnSync("/bin/true").pid!;
    writeFileSync(join(dir, `server-111111.json.${gone}.0a1b2c3d.tmp`), "{");
    writeFileSync(join(dir, `server-222222.json.${process.pid}.0a1b2c3d.tmp`), "{");
    expect(await ps()).toEqual([]);
    expect(instanceFiles()).toEqual([`server-222222.json.${process.pid}.0a1b2c3d.tmp`]);
    rmSync(join(dir, `server-222222.json.${process.pid}.0a1b2c3d.tmp`));
  });

  it("castle exec runs a command inside a running instance, with the system's env and cwd", async () => {
    const { started, entry } = await startInstance(["--", "sh", "-c", "echo from-the-instance > /tmp/mark; exec sleep 305"], "sleep 305");
    const inside = await home.run(["exec", entry.id, "--", "/bin/sh", "-c", 'cat /tmp/mark; echo "$GREETING $PWD $(hostname)"; ps']);
    expect(inside.code, inside.stderr).toBe(0);
    expect(inside.stdout).toMatch(/^from-the-instance\nhi \/srv server\n/); // its files (even its /tmp), env, cwd, hostname
    expect(inside.stdout).toMatch(/^ +2 +0 +sleep 305$/m); // and its processes
    expect((await home.run(["exec", "server", "-e", "GREETING=hello", "-w", "/tmp", "--", "/bin/sh", "-c", "echo $GREETING $PWD"])).stdout).toBe(
      "hello /tmp\n",
    );
    expect((await home.run(["exec", entry.id, "--", "sh", "-c", "exit 9"])).code).toBe(9);
    const missing = await home.run(["exec", entry.id, "--", "no-such-command"]);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toMatch(/^castle: .*no-such-command/m);
    expect((await home.run(["exec", entry.id], { input: "echo piped-$((6*7))\n" })).stdout).toBe("piped-42\n"); // default: a shell

    expect((await home.run(["kill", entry.id])).code).toBe(0);
    await started.exited;
    const gone = await home.run(["exec", entry.id, "--", "true"]);
    expect(gone.code).toBe(6);
    expect(gone.stderr).toBe(`castle: no running instance "${entry.id}"\nhint: see \`castle ps\`\n`);
  });

  it.skipIf(scriptMissing())("castle exec gives a shell on a terminal", async () => {
    const { started, entry } = await startInstance(["--", "sleep", "306"], "sleep 306");
    const term = new Terminal(home, ["exec", entry.id]);
    try {
      let at = await term.expect(/inside\$ /);
      term.type("tty; echo in-$PWD\n");
      at = await term.expect(/\/dev\/pts\/\d+\s+in-\/srv/, at);
      term.type("exit 5\n");
      expect(await term.status()).toBe(5);
    } finally {
      term.kill();
    }
    expect((await home.run(["kill", entry.id])).code).toBe(0);
    await started.exited;
  });
});

function readProcStat(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return "";
  }
}
