// The fast path through the `castle` bin (the native launcher), as uid 65534 and as root: after
// a normal run of a pure definition, `castle run <dir> -- cmd` starts the sandbox without Node —
// and never runs a stale system. Each change to what a definition read (a variable, a file, a
// sibling module, a local source, an override) gives the new system at once; a definition that
// reads the clock or spawns a process never takes the fast path; a pruned store, a removed tree
// and a changed Castle fall through. What the normal run does around the command is replayed:
// the exit status, the instance in `castle ps` and the one-instance rule (the system's slot, the
// store's pin), signals passed on, the terminal, the error text of a command that is gone.
// CASTLE_FASTPATH_DEBUG makes both paths say what they did.

import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliWorld, IS_ROOT, cliMissing, definition, giveToUser, writeFiles, type CliHome, type CliResult } from "./helpers/cli-harness";
import { scriptMissing, Terminal } from "./helpers/cli-pty";

const skip = cliMissing();
if (skip) console.warn(`skipping cli-fastpath: ${skip}`);

const DEBUG = { CASTLE_FASTPATH_DEBUG: "1" };
/** A stat taken within this long of a change is not trusted (RACY_MS): wait it out to get an entry. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 2100));
const taken = (r: CliResult) => r.stderr.includes("castle: fast path: taken");
const missReason = (r: CliResult) => /castle: fast path: not taken: (.*)/.exec(r.stderr)?.[1];

const users: [string, boolean][] = [
  ["uid 65534", false],
  ["root", true],
];

describe.skipIf(skip)("the fast path", () => {
  let world: CliWorld;
  beforeAll(() => {
    world = CliWorld.create();
  });
  afterAll(() => world?.dispose("cli-fastpath"));

  for (const [who, caller] of users) {
    const unavailable = caller && !IS_ROOT ? "the tests do not run as root" : undefined;
    if (unavailable) console.warn(`skipping the fast path as root: ${unavailable}`);

    describe.skipIf(unavailable)(`as ${who}`, () => {
      let home: CliHome;
      const name = caller ? "root" : "nobody";
      const run = (dir: string, command: string[], env: Record<string, string | undefined> = {}) =>
        home.run(["run", dir, "--", ...command], { bin: true, env: { ...DEBUG, ...env } });
      /** Runs until the entry is surely written (a run, the racy window, a run), then once more: taken. */
      const primed = async (dir: string, command: string[], env: Record<string, string | undefined> = {}) => {
        const first = await run(dir, command, env);
        expect(first.code, first.stderr).toBe(0);
        await settle();
        await run(dir, command, env);
        const third = await run(dir, command, env);
        expect(taken(third), third.stderr).toBe(true);
        return third;
      };

      beforeAll(() => {
        home = world.home(`home-${name}`, { caller });
      });

      it("replays a cached run, and every change to what the definition read gives the new system", async () => {
        const dir = world.dir(`${name}-reads`, {
          "lib.ts": 'export const greeting = "hello";\n',
          "data.txt": "one\n",
          "files/a.txt": "A1\n",
        });
        writeFiles(dir, {
          "castle.ts":
            definition(world.rootfs, "") +
            `import { readFileSync } from "node:fs";
import { greeting } from "./lib";
const fromEnv = process.env.CASTLE_TEST_COLOR ?? "none";
const fromFile = readFileSync(${JSON.stringify(join(dir, "data.txt"))}, "utf8").trim();
const files = layer.import({ name: "files", from: source.local("./files") });
const out = layer({ name: "out", runDeps: [base], script: \`echo "\${fromEnv} \${fromFile} \${greeting}" > /out\` });
export default system({ name: "reads-${name}", layers: [out, files] });
`,
        });
        const show = ["/bin/cat", "/out", "/a.txt"];

        const start = await primed(dir, show, { CASTLE_TEST_COLOR: "red" });
        expect(start.stdout).toBe("red one hello\nA1\n");

        // A variable it read: a new layer; back to the old value, whose layers are long built, the
        // normal run records the entry again at once.
        let r = await run(dir, show, { CASTLE_TEST_COLOR: "blue" });
        expect(missReason(r)).toBe("$CASTLE_TEST_COLOR changed");
        expect(r.stdout).toBe("blue one hello\nA1\n");
        r = await run(dir, show, { CASTLE_TEST_COLOR: "red" });
        // The entry is still red's, but the blue run moved the system's root to its own layers.
        expect(missReason(r)).toBe("the system's root changed");
        expect(r.stdout).toBe("red one hello\nA1\n");
        r = await run(dir, show, { CASTLE_TEST_COLOR: "red" });
        expect(taken(r), r.stderr).toBe(true);
        expect(r.stdout).toBe("red one hello\nA1\n");
        r = await run(dir, show, {});
        expect(missReason(r)).toBe("$CASTLE_TEST_COLOR changed");
        expect(r.stdout).toBe("none one hello\nA1\n");
        expect((await primed(dir, show)).stdout).toBe("none one hello\nA1\n");

        // A file it read, a sibling module, a local source's file, a file added to it: each is
        // seen on the very next run, though the stat of what changed is too fresh to record.
        const steps: [Record<string, string>, string, RegExp][] = [
          [{ "data.txt": "two\n" }, "none two hello\nA1\n", /data\.txt changed/],
          [{ "lib.ts": 'export const greeting = "howdy";\n' }, "none two howdy\nA1\n", /lib\.ts changed/],
          [{ "files/a.txt": "A2\n" }, "none two howdy\nA2\n", /files\/a\.txt changed/],
          [{ "files/b.txt": "B\n" }, "none two howdy\nA2\n", /files changed/],
        ];
        for (const [files, output, reason] of steps) {
          // Written in place (writeFiles would also chmod, and so change, every file).
          for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
          r = await run(dir, show);
          expect(missReason(r)).toMatch(reason);
          expect(r.stdout).toBe(output);
          r = await run(dir, show);
          expect(taken(r), r.stderr).toBe(false);
          expect(r.stdout).toBe(output);
          await settle();
          await run(dir, show); // writes the entry
          r = await run(dir, show);
          expect(taken(r), r.stderr).toBe(true);
          expect(r.stdout).toBe(output);
        }
        r = await run(dir, ["/bin/cat", "/b.txt"]);
        expect(r.stdout).toBe("B\n");
      });

      it("never takes the fast path for a definition that reads the clock or spawns a process", async () => {
        for (const [kind, code, reason] of [
          ["clock", "const stamp = String(Date.now() % 2);", "calls Date.now()"],
          ["spawn", 'import { execFileSync } from "node:child_process";\nconst stamp = execFileSync("/bin/echo", ["x"], { encoding: "utf8" }).trim();', "uses child_process.execFileSync"],
        ]) {
          const dir = world.dir(`${name}-${kind}`, {
            "castle.ts": definition(world.rootfs, `${code}\nexport default system({ name: "${kind}-${name}", layers: [layer({ name: "s", runDeps: [base], script: "echo " + stamp + " > /stamp" })] });`),
          });
          const first = await run(dir, ["/bin/cat", "/stamp"]);
          expect(first.code, first.stderr).toBe(0);
          await settle();
          for (let i = 0; i < 3; i++) {
            const r = await run(dir, ["/bin/cat", "/stamp"]);
            expect(r.code, r.stderr).toBe(0);
            expect(taken(r)).toBe(false);
            expect(r.stderr).toContain(`castle: fast path: no entry: the definition is impure: ${reason}`);
          }
        }
      });

      it("falls through after a prune, with a removed tree, a changed override and a changed Castle", async () => {
        const dir = world.dir(`${name}-store`, {
          "castle.ts": definition(world.rootfs, `const tool = layer.import({ name: "tool", from: source.local("./tool") });
const top = layer({ name: "top", runDeps: [base, tool], script: "cat /tool.txt > /top" });
export default system({ name: "store-${name}", layers: [top] });`),
          "tool/tool.txt": "tool 1\n",
        });
        const show = ["/bin/cat", "/top"];
        expect((await primed(dir, show)).stdout).toBe("tool 1\n");

        // A prune, even one that removes nothing of this system, clears the entries and moves the
        // generation: an entry kept from before it (say, written while it ran) is not used either.
        const entries = join(home.cacheDir, "fastpath");
        const before = new Map(readdirSync(entries).map((f) => [f, readFileSync(join(entries, f))]));
        const prune = await home.run(["cache", "prune"]);
        expect(prune.code, prune.stderr).toBe(0);
        expect(readdirSync(entries)).toEqual([]);
        for (const [f, bytes] of before) {
          writeFileSync(join(entries, f), bytes);
          if (!caller) giveToUser(join(entries, f)); // the launcher only reads its own user's entries
        }
        let r = await run(dir, show);
        expect(missReason(r)).toBe("the store was pruned");
        expect(r.stdout).toBe("tool 1\n");
        r = await run(dir, show);
        expect(taken(r), r.stderr).toBe(true);

        // A prune that removes every layer: the next run builds them again.
        expect((await home.run(["cache", "prune", "--keep-days", "0"])).code).toBe(0);
        r = await run(dir, show);
        expect(missReason(r)).toMatch(/^no entry for this command/);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toBe("tool 1\n");
        expect(r.stderr).toMatch(/built top/);
        await settle();
        await run(dir, show);

        // A tree removed from the store by hand.
        const trees = join(home.cacheDir, "trees");
        for (const tree of readdirSync(trees)) rmSync(join(trees, tree), { recursive: true, force: true });
        r = await run(dir, show);
        expect(missReason(r)).toMatch(/^the tree .* is gone$|changed$/);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toBe("tool 1\n");
        await settle();
        await run(dir, show);
        r = await run(dir, show);
        expect(taken(r), r.stderr).toBe(true);

        // An override: new, then its content changed.
        const patched = world.dir(`${name}-patched-tool`, { "tool.txt": "patched 1\n" });
        r = await run(dir, show, { CASTLE_OVERRIDE_tool: patched });
        expect(missReason(r)).toBe("$CASTLE_OVERRIDE_tool is new");
        expect(r.stdout).toBe("patched 1\n");
        await settle();
        await run(dir, show, { CASTLE_OVERRIDE_tool: patched });
        r = await run(dir, show, { CASTLE_OVERRIDE_tool: patched });
        expect(taken(r), r.stderr).toBe(true);
        expect(r.stdout).toBe("patched 1\n");
        writeFileSync(join(patched, "tool.txt"), "patched 2\n");
        r = await run(dir, show, { CASTLE_OVERRIDE_tool: patched });
        expect(missReason(r)).toMatch(/tool\.txt changed$/);
        expect(r.stdout).toBe("patched 2\n");
        r = await run(dir, show);
        expect(missReason(r)).toBe("$CASTLE_OVERRIDE_tool changed");
        expect(r.stdout).toBe("tool 1\n");

        // A configuration file appears (its settings may reach the system: trusted keys…).
        await settle();
        await run(dir, show);
        expect(taken(await run(dir, show))).toBe(true);
        const config = join(home.dir, ".config/castle");
        mkdirSync(config, { recursive: true });
        writeFileSync(join(config, "config.json"), JSON.stringify({ "sources.mirrors": ["/nonexistent-mirror"] }));
        if (!caller) giveToUser(join(home.dir, ".config"));
        r = await run(dir, show);
        expect(missReason(r)).toMatch(/config\.json changed$/);
        expect(r.stdout).toBe("tool 1\n");

        // A different Castle: its bundle changed.
        await settle();
        await run(dir, show);
        expect(taken(await run(dir, show))).toBe(true);
        const core = join(world.castle, "../core.cjs");
        writeFileSync(core, `${readFileSync(core, "utf8")}\n// another build\n`);
        r = await run(dir, show);
        expect(missReason(r)).toMatch(/core\.cjs changed$/);
        expect(r.stdout).toBe("tool 1\n");
      });

      it("replays exit statuses, the instance, the one-instance rule, signals and a missing command's error", async () => {
        const dir = world.dir(`${name}-replay`, {
          "castle.ts": definition(world.rootfs, `export default system({ name: "replay-${name}", layers: [base] });`),
        });
        const exit3 = ["/bin/sh", "-c", "exit 3"];
        await run(dir, exit3);
        await settle();
        await run(dir, exit3);
        let r = await run(dir, exit3);
        expect(taken(r), r.stderr).toBe(true);
        expect(r.code).toBe(3);

        // A long command: registered while it runs, the system refused to a second run, SIGTERM passed on.
        const wait = ["/bin/sh", "-c", 'trap "exit 7" TERM; trap "exit 8" INT; sleep "$(cat /delay 2>/dev/null || echo 0)" & wait'];
        await primed(dir, wait);
        expect((await run(dir, ["/bin/sh", "-c", "echo 30 > /delay"])).code).toBe(0);
        const long = home.start(["run", dir, "--", ...wait], { bin: true, env: DEBUG });
        let instances: { id: string; system: string; command: string[]; pid: number; initPid: number }[] = [];
        for (let i = 0; i < 100 && instances.length === 0; i++) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          const ps = await home.run(["ps", "--json"]);
          instances = JSON.parse(ps.stdout) as typeof instances;
        }
        expect(long.stderr).toContain("castle: fast path: taken");
        expect(instances).toHaveLength(1);
        expect(instances[0]).toMatchObject({ system: `replay-${name}`, command: wait });
        expect(instances[0]!.id).toMatch(new RegExp(`^replay-${name}-[0-9a-f]{6}$`));
        const busy = await run(dir, exit3);
        expect(missReason(busy), busy.stderr).toBe("the system's slot is taken");
        expect(busy.code).toBe(2);
        expect(busy.stderr).toContain(`system replay-${name} is already running as ${instances[0]!.id}`);
        const inside = await home.run(["exec", instances[0]!.id, "--", "/bin/sh", "-c", "echo inside $PWD; echo $CASTLE_INSIDE"]);
        expect(inside.code, inside.stderr).toBe(0);
        const [where, info] = inside.stdout.split("\n");
        expect(where).toBe("inside /root");
        // The system knows which instance it is: this run's id, not the recorded run's.
        if (info) expect(JSON.parse(info)).toMatchObject({ instance: instances[0]!.id });
        long.child.kill("SIGTERM");
        const ended = await long.exited;
        expect(ended.code, ended.stderr).toBe(7);
        expect(readdirSync(join(home.stateDir, "instances"))).toEqual([]);
        expect(readdirSync(join(home.stateDir, "slots"))).toEqual([]);
        expect(readdirSync(join(home.cacheDir, "pins"))).toEqual([]);

        // Two started together, both on the fast path: one runs, the other is refused.
        const pair = [0, 1].map(() => home.start(["run", dir, "--", ...wait], { bin: true, env: DEBUG }));
        const first = await Promise.race(pair.map((p) => p.exited.then((r) => ({ p, r }))));
        expect(first.r.code, first.r.stderr).toBe(2);
        expect(first.r.stderr).toContain(`system replay-${name} is already running`);
        const winner = pair.find((p) => p !== first.p)!;
        await winner.waitFor(/fast path: taken/);
        for (let i = 0; i < 100 && readdirSync(join(home.stateDir, "instances")).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
        // SIGINT is passed on too (as docker run does), not taken by castle itself.
        winner.child.kill("SIGINT");
        expect((await winner.exited).code).toBe(8);

        // A fast-path castle killed with SIGKILL: its sandbox goes with it, its slot is stale, and
        // the next run (through Node, which judges the slot) clears it and runs.
        const killed = home.start(["run", dir, "--", ...wait], { bin: true, env: DEBUG });
        await killed.waitFor(/fast path: taken/);
        for (let i = 0; i < 100 && readdirSync(join(home.stateDir, "instances")).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
        killed.child.kill("SIGKILL");
        await killed.exited;
        r = await run(dir, exit3);
        expect(missReason(r)).toBe("the system's slot is taken");
        expect(r.code, r.stderr).toBe(3);
        r = await run(dir, exit3);
        expect(taken(r), r.stderr).toBe(true);
        expect(r.code).toBe(3);
        expect((await run(dir, ["/bin/sh", "-c", "rm /delay"])).code).toBe(0);

        // The host's /etc/hosts is mounted in while the system has none of its own; once it has
        // one (in its upper dir), that decision changes: the run falls through and mounts nothing.
        const hosts = ["/bin/cat", "/etc/hosts"];
        await primed(dir, hosts);
        const own = join(home.dataDir, "systems", `replay-${name}`, "upper/etc");
        mkdirSync(own, { recursive: true });
        writeFileSync(join(own, "hosts"), "10.0.0.1 own\n");
        if (!caller) giveToUser(join(home.dataDir, "systems", `replay-${name}`, "upper"));
        r = await run(dir, hosts);
        expect(missReason(r)).toMatch(/upper\/etc\/hosts appeared or went$/);
        expect(r.stdout).toBe("10.0.0.1 own\n");
        r = await run(dir, hosts);
        expect(taken(r), r.stderr).toBe(true);
        expect(r.stdout).toBe("10.0.0.1 own\n");

        // A command recorded while it existed, then removed inside the system: the same error text.
        const tool = ["/usr/bin/tool"];
        expect((await run(dir, ["/bin/sh", "-c", "printf '#!/bin/sh\\necho tool\\n' > /usr/bin/tool; chmod +x /usr/bin/tool"])).code).toBe(0);
        expect((await primed(dir, tool)).stdout).toBe("tool\n");
        expect((await run(dir, ["/bin/rm", "/usr/bin/tool"])).code).toBe(0);
        r = await run(dir, tool);
        expect(taken(r), r.stderr).toBe(true);
        const fast = await home.run(["run", dir, "--", ...tool], { bin: true });
        const normal = await home.run(["run", dir, "--", ...tool], { bin: true, env: { CASTLE_FASTPATH: "0" } });
        expect(fast.code).toBe(127);
        expect(normal.code).toBe(127);
        expect(fast.stderr).toBe(normal.stderr);
        expect(fast.stderr).toContain(`castle: /usr/bin/tool: command not found in system replay-${name}`);
      });

      it.skipIf(scriptMissing())("replays a run on a terminal: the sandbox's own pty, keys typed, the status", async () => {
        const dir = world.dir(`${name}-tty`, {
          "castle.ts": definition(world.rootfs, `export default system({ name: "tty-${name}", layers: [base] });`),
        });
        const args = ["run", dir, "--", "/bin/sh", "-c", 'read line; echo "got $line on $(tty)"; exit 4'];
        const session = async () => {
          const terminal = new Terminal(home, args, { bin: true, env: DEBUG });
          await terminal.expect(/fast path: (taken|not taken|no entry)/);
          terminal.type("hello\r");
          await terminal.expect(/got hello on \/dev\/pts\/\d+/);
          expect(await terminal.status()).toBe(4);
          return terminal.text;
        };
        expect(await session()).not.toContain("fast path: taken");
        await settle();
        await session();
        expect(await session()).toContain("castle: fast path: taken");
      });
    });
  }
});
