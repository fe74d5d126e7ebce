// Editable sources inside a system, through the bundled binary as uid 65534:
// - `castle edit <source>` puts the source's pinned files at ~/src/<source>; every build inside
//   then uses them (only the layers that use the source rebuild); the edit persists with the
//   system's state; `--stop` goes back to the pinned source and keeps the files;
// - the host sees where the edited tree lives (`castle edit --where` inside, `castle ps` outside)
//   and builds with it through CASTLE_OVERRIDE_<source>;
// - `system({ edit: [...] })` does the same when the system starts;
// - bad input: an unknown source (the closest name suggested, exit 2), a full inner store (the
//   build fails clearly, exit 1, and the store keeps nothing partial).

import { cpSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliWorld, cliMissing, runtimeMissing, writeFiles, type CliHome, type Started } from "./helpers/cli-harness";

const skip = cliMissing() ?? runtimeMissing();
if (skip) console.warn(`skipping cli-inside-edit: ${skip}`);

/** A system whose `greet` layer copies the `greet-src` source's message to /etc/greeting. */
const greeter = (name: string, options = "") => `import { layer, source, system } from "castle";
const base = layer.import({ name: "base", from: source.local("./rootfs") });
const greetSrc = source.inline({ "msg": "hello\\n", "README": "the greeting\\n" }, { name: "greet-src" });
const greet = layer({ name: "greet", runDeps: [base], mounts: { "/src/greet": greetSrc }, script: "mkdir -p /etc && cp /src/greet/msg /etc/greeting" });
const other = layer({ name: "other", runDeps: [base], script: "mkdir -p /etc && echo other > /etc/other" });
export default system({ name: "${name}", layers: [greet, other], entrypoint: ["/bin/cat", "/etc/greeting"]${options} });
`;

describe.skipIf(skip)("castle edit: sources edited inside a system", () => {
  let world: CliWorld;
  let home: CliHome;
  let def: string;
  const background: Started[] = [];
  const inside = (script: string, args: string[] = [], dir = def) => home.run(["run", dir, ...args, "--", "/bin/sh", "-c", script]);
  const definitionDir = (name: string, text: string) => {
    const dir = world.dir(name);
    cpSync(world.rootfs, join(dir, "rootfs"), { recursive: true, verbatimSymlinks: true });
    writeFiles(dir, { "castle.ts": text });
    return dir;
  };

  beforeAll(async () => {
    world = CliWorld.create();
    home = world.home();
    def = definitionDir("def", greeter("greeter"));
    const built = await home.run(["build", def]);
    expect(built.code, built.stderr).toBe(0);
  });
  afterAll(async () => {
    for (const s of background) s.child.kill("SIGKILL");
    await Promise.all(background.map((s) => s.exited));
    world?.dispose("cli-inside-edit");
  });

  describe("after `castle edit greet-src` and a patch inside", () => {
    let edited: Awaited<ReturnType<typeof inside>>;
    const hostDir = () => join(home.dataDir, "systems/greeter/src/greet-src");
    beforeAll(async () => {
      edited = await inside(
        ["castle edit greet-src", "cat ~/src/greet-src/msg", "echo patched > ~/src/greet-src/msg", "castle run --plain -- cat /etc/greeting", "castle edit"].join("\n"),
      );
    });

    it("puts the source at ~/src and every build inside uses it; only what uses it rebuilds", () => {
      expect(edited.code, edited.stderr).toBe(0);
      expect(edited.stdout).toBe(`/root/src/greet-src\nhello\npatched\ngreet-src\t/root/src/greet-src\t${hostDir()}\n`);
      expect(edited.stderr).toMatch(/^castle: every build in this system now uses \/root\/src\/greet-src for greet-src/m);
      expect(edited.stderr).toMatch(/^building greet /m);
      expect(edited.stderr).toMatch(/^\[\s*\d+\/\d+\] cached other$/m);
      expect(edited.stderr).toMatch(/^done: 3 layers \(1 built, 0 pulled, 2 cached\)/m);
      expect(readFileSync(join(hostDir(), "msg"), "utf8")).toBe("patched\n");
    });

    it("keeps the edit across runs; --stop goes back to the pinned source and keeps the files", async () => {
      const r = await inside("castle run -- cat /etc/greeting; castle edit --stop greet-src; castle run -- cat /etc/greeting; cat ~/src/greet-src/msg; castle edit");
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe("patched\nhello\npatched\n");
      expect(r.stderr).toMatch(/^castle: builds in this system use the pinned greet-src again; its files stay in \/root\/src\/greet-src$/m);
      const again = await inside("castle edit greet-src >/dev/null; castle run -- cat /etc/greeting");
      expect(again.stdout).toBe("patched\n"); // the files were kept, and are used again
      expect(again.stderr).toMatch(/^castle: greet-src is already at \/root\/src\/greet-src: kept as it is$/m);
    });

    it("the host learns where the edited tree is (edit --where, ps) and builds with it", async () => {
      const hostDir = join(home.dataDir, "systems/greeter/src/greet-src");
      const where = await inside("castle edit --where greet-src");
      expect(where.code, where.stderr).toBe(0);
      expect(where.stdout).toBe(`${hostDir}\n`);
      expect(where.stderr).toBe(`on the host: CASTLE_OVERRIDE_greet_src=${hostDir} castle run ${def}\n`);

      const running = home.start(["run", def, "--", "/bin/sh", "-c", "echo ready; exec sleep 300"]);
      background.push(running);
      await running.waitFor(/^ready$/m);
      const ps = await home.run(["ps"]);
      expect(ps.stdout).toMatch(new RegExp(`^edited sources .*\\n  greeter-[0-9a-f]{6}  greet-src  ${hostDir}$`, "m"));
      const json = JSON.parse((await home.run(["ps", "--json"])).stdout) as { edits: { name: string; host: string }[] }[];
      expect(json[0]!.edits).toEqual([{ name: "greet-src", inside: "/root/src/greet-src", host: hostDir }]);
      const onHost = await home.run(["run", def, "--ephemeral", "--", "cat", "/etc/greeting"], { env: { CASTLE_OVERRIDE_greet_src: hostDir } });
      expect(onHost.code, onHost.stderr).toBe(0);
      expect(onHost.stdout).toBe("patched\n");
      running.child.kill("SIGTERM");
      await running.exited;
    });
  });

  it("system({ edit }) puts the source in place when the system starts", async () => {
    const declared = definitionDir("declared", greeter("declared", `, edit: ["greet-src"]`));
    const r = await inside("cat ~/src/greet-src/README; castle edit; echo again > ~/src/greet-src/msg; castle run -- cat /etc/greeting", [], declared);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`the greeting\ngreet-src\t/root/src/greet-src\t${join(home.dataDir, "systems/declared/src/greet-src")}\nagain\n`);
    // An unknown name in the option is the definition's error, with the closest name.
    const wrong = definitionDir("wrong", greeter("wrong", `, edit: ["greet-scr"]`));
    const bad = await home.run(["run", wrong, "--", "true"]);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/^castle: system wrong: edit: system wrong has no source "greet-scr" \(did you mean "greet-src"\?\)$/m);
  });

  it("an unknown source is a clear usage error naming the closest one; nothing changes", async () => {
    const r = await inside("castle edit greet-scr; echo status $?; castle edit");
    expect(r.stdout).toMatch(/^status 2$/m);
    expect(r.stderr).toMatch(/^castle: castle edit: system greeter has no source "greet-scr" \(did you mean "greet-src"\?\)$/m);
    expect(r.stderr).toMatch(/^hint: its sources are: rootfs, greet-src$/m);
    expect(r.stdout).not.toMatch(/greet-scr/);
    const outside = await home.run(["edit", "greet-src"]);
    expect(outside.code).toBe(2);
    expect(outside.stderr).toMatch(/^castle: castle edit works inside a system started by `castle run`/m);
  });

  it("a full inner store: the build fails clearly (exit 1), keeps nothing partial, and works again with space", async () => {
    // The Castle inside keeps its store on a 4 MB tmpfs of its own; the changed layer writes 8 MB.
    const script = [
      "echo keep > ~/notes",
      "cp -R ~/castle-src ~/big && sed -i 's|echo other > /etc/other|dd if=/dev/zero of=/etc/big bs=1M count=8|' ~/big/castle.ts",
      "unshare -Urm sh -c '",
      "  mount -t tmpfs -o size=4m small /.castle/state || exit 99",
      "  castle run ~/big --plain -- true; echo status $?",
      "  ls -A /.castle/state/cache/tmp; ls /.castle/state/cache/trees | wc -l",
      "  castle cache verify >/dev/null && echo verified",
      "  castle run --plain -- cat /etc/other'",
    ].join("\n");
    const r = await inside(script);
    if (r.stdout.includes("status 99") || /unshare: .*(Operation not permitted|Invalid argument)/.test(r.stderr)) {
      console.warn(`skipped: cannot mount a small tmpfs in a user namespace here: ${r.stderr.trim().split("\n").pop()}`);
      return;
    }
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("status 1\n0\nverified\nother\n");
    expect(r.stderr).toMatch(/No space left on device/);
    expect(r.stderr).toMatch(/^castle: layer other: the build script exited with status 1 \(it ran out of disk space\)$/m);
    expect(r.stderr).toMatch(/^hint: the store's disk is full \(\/\.castle\/state\/cache, \d+\.\d MB free now\): free some space/m);
    expect(readFileSync(join(home.dataDir, "systems/greeter/upper/root/notes"), "utf8")).toBe("keep\n");
  });
});
