// `castle run` and `castle build` from a local directory, through the bundled binary as uid
// 65534: the entrypoint or the command after --, its exit status passed through (127 and 126
// for a missing or non-executable command), the system's env/cwd/hostname, stdin, a second run
// that builds nothing, --network, an interrupted build (130), -j, and the digest `castle build`
// prints.

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliWorld, cliMissing, definition, type CliHome } from "./helpers/cli-harness";

const skip = cliMissing();
if (skip) console.warn(`skipping cli-run: ${skip}`);

describe.skipIf(skip)("castle run from a local directory", () => {
  let world: CliWorld;
  let home: CliHome;
  let def: string;

  beforeAll(() => {
    world = CliWorld.create();
    home = world.home();
    def = world.dir("def", {
      "castle.ts": definition(
        world.rootfs,
        `const hello = layer({ name: "hello", runDeps: [base], script: "mkdir -p /etc /srv && echo hello from castle > /etc/motd" });
export default system({
  name: "demo", layers: [hello], entrypoint: ["/bin/sh", "-c", "cat /etc/motd; echo args=$#"],
  env: { GREETING: "hi" }, cwd: "/srv", hostname: "castle-demo",
});`,
      ),
    });
  });
  afterAll(() => world?.dispose("cli-run"));

  it("builds what is missing, then runs the entrypoint", async () => {
    const r = await home.run(["run", def]);
    expect(r.stderr).toMatch(/building hello \(new\)/);
    expect(r.stderr).toMatch(/done: 2 layers \(\d built/);
    expect(r.stdout).toBe("hello from castle\nargs=0\n");
    expect(r.code).toBe(0);
  });

  it("builds nothing the second time and prints no progress", async () => {
    const r = await home.run(["run", def, "--plain"]);
    expect(r.stdout).toBe("hello from castle\nargs=0\n");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  it("runs the command after -- with the system's env, cwd and hostname", async () => {
    const r = await home.run(["run", def, "--", "/bin/sh", "-c", 'echo "$GREETING $(pwd) $(hostname) $HOME $(id -u)"']);
    expect(r.stdout).toBe("hi /srv castle-demo /root 0\n");
    expect(r.code).toBe(0);
  });

  it("passes stdin through", async () => {
    const r = await home.run(["run", def, "--", "tr", "a-z", "A-Z"], { input: "shout\n" });
    expect(r.stdout).toBe("SHOUT\n");
  });

  it("exits with the command's own status", async () => {
    expect((await home.run(["run", def, "--", "sh", "-c", "exit 7"])).code).toBe(7);
    expect((await home.run(["run", def, "--", "false"])).code).toBe(1);
    // Killed by a signal: 128 + signal number, as a shell reports it.
    expect((await home.run(["run", def, "--", "sh", "-c", "kill -TERM $$"])).code).toBe(143);
  });

  it("exits 127 for a command that does not exist, with one clear message", async () => {
    const r = await home.run(["run", def, "--", "no-such-command", "x"]);
    expect(r.code).toBe(127);
    expect(r.stderr).toMatch(/^castle: no-such-command: command not found in system demo\nhint: /m);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  });

  it("exits 126 for a command that is not executable", async () => {
    const r = await home.run(["run", def, "--", "/etc/motd"]);
    expect(r.code).toBe(126);
    expect(r.stderr).toMatch(/^castle: \/etc\/motd: cannot execute it in system demo\nhint: /m);
  });

  it("--network none leaves only loopback; the default shares the host's network", async () => {
    const interfaces = async (...flags: string[]) => {
      const r = await home.run(["run", def, ...flags, "--", "cat", "/proc/net/dev"]);
      return r.stdout.split("\n").slice(2).map((line) => line.split(":")[0]!.trim()).filter(Boolean);
    };
    expect(await interfaces("--network", "none")).toEqual(["lo"]);
    const host = readFileSync("/proc/net/dev", "utf8").split("\n").slice(2).map((line) => line.split(":")[0]!.trim()).filter(Boolean);
    expect((await interfaces()).sort()).toEqual(host.sort());
  });

  it("an interrupted build exits 130 and leaves the store usable", async () => {
    const slow = world.dir("slow", {
      "castle.ts": definition(world.rootfs, `const s = layer({ name: "s", runDeps: [base], script: "sleep 30; echo done > /done" });
export default system({ name: "slow", layers: [s] });`),
    });
    const build = home.start(["build", slow, "--plain"]);
    await build.waitFor(/^building s /m);
    build.child.kill("SIGINT");
    const r = await build.exited;
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/^castle: interrupted \(Ctrl-C\): nothing half-built was kept; what was done is cached$/m);
    expect(r.stdout).toBe("");
    // Nothing half-built was kept, and nothing is left locked.
    const records = JSON.parse((await home.run(["cache", "ls", "--json"])).stdout) as { name: string }[];
    expect(records.map((x) => x.name)).not.toContain("s");
    writeFileSync(join(slow, "castle.ts"), definition(world.rootfs, `const s = layer({ name: "s", runDeps: [base], script: "echo done > /done" });
export default system({ name: "slow", layers: [s] });`));
    const again = await home.run(["run", slow, "--", "cat", "/done"]);
    expect(again.stdout).toBe("done\n");
  });

  it("-j sets how many layers build at once", async () => {
    // Two independent layers record when they ran (/proc/uptime, in hundredths of a second).
    const timed = (name: string) =>
      `const ${name} = layer({ name: "${name}", runDeps: [base], script: "read up _ < /proc/uptime; echo $up > /${name}.start; sleep 1; read up _ < /proc/uptime; echo $up > /${name}.end" });`;
    const jobs = world.dir("jobs", {
      "castle.ts": definition(world.rootfs, `${timed("a")}\n${timed("b")}\nexport default system({ name: "jobs", layers: [a, b] });`),
    });
    const spans = async (args: string[]) => {
      const r = await home.run(["run", jobs, ...args, "--", "cat", "/a.start", "/a.end", "/b.start", "/b.end"]);
      expect(r.code, r.stderr).toBe(0);
      const [aStart, aEnd, bStart, bEnd] = r.stdout.trim().split("\n").map(Number);
      return { overlap: Math.min(aEnd!, bEnd!) - Math.max(aStart!, bStart!) };
    };
    expect((await spans(["-j", "1"])).overlap).toBeLessThanOrEqual(0);
    expect((await spans(["--jobs", "2", "--rebuild", "a", "--rebuild", "b"])).overlap).toBeGreaterThan(0.3);
  });

  it("castle build prints the system's digest, the same every time", async () => {
    const first = await home.run(["build", def]);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^[0-9a-f]{64}\n$/);
    const json = await home.run(["build", def, "--json"]);
    const parsed = JSON.parse(json.stdout) as { system: string; digest: string; layers: { name: string }[] };
    expect(parsed.system).toBe("demo");
    expect(parsed.digest).toBe(first.stdout.trim());
    expect(parsed.layers.map((l) => l.name)).toEqual(["base", "hello"]);
    // Another store builds the same bytes: the digest is of content, not of where it was built.
    const other = world.home("other");
    expect((await other.run(["build", def])).stdout).toBe(first.stdout);
  });
});
