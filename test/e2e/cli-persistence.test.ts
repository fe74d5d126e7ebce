// Each system's persistent upper dir, through the bundled binary as uid 65534: what a run writes
// (home, /var, edits to /etc) is there the next run, survives a rebuild of the layers beneath it,
// lives under $XDG_DATA_HOME/castle/systems/<name>, is per system; --fresh starts clean (asking
// on a terminal, wanting --yes elsewhere, saying what it discards); --ephemeral runs on the layers
// alone and --snapshot on top of the state, both leaving it untouched and discarding their writes.

import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliWorld, cliMissing, definition, type CliHome } from "./helpers/cli-harness";
import { scriptMissing, Terminal } from "./helpers/cli-pty";

const skip = cliMissing();
if (skip) console.warn(`skipping cli-persistence: ${skip}`);
const noPty = scriptMissing();
if (!skip && noPty) console.warn(`skipping the --fresh question on a terminal: ${noPty}`);

describe.skipIf(skip)("persistent system state", () => {
  let world: CliWorld;
  let home: CliHome;
  let def: string;
  let other: string;

  const castleTs = (motd: string, name = "keeper") =>
    definition(
      world.rootfs,
      `const etc = layer({ name: "etc", runDeps: [base], script: "mkdir -p /etc && echo '${motd}' > /etc/motd && echo stock > /etc/app.conf" });
export default system({ name: "${name}", layers: [etc] });`,
    );
  const run = (script: string, ...flags: string[]) => home.run(["run", def, ...flags, "--", "/bin/sh", "-c", script]);
  const sh = async (script: string, ...flags: string[]) => {
    const r = await run(script, ...flags);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };

  beforeAll(() => {
    world = CliWorld.create();
    home = world.home();
    def = world.dir("def", { "castle.ts": castleTs("motd v1") });
    other = world.dir("other", { "castle.ts": castleTs("other motd", "other") });
  });
  afterAll(() => world?.dispose("cli-persistence"));

  it("keeps what a run wrote for the next run", async () => {
    await sh("echo note-1 > /root/notes && mkdir -p /var/lib/app && echo rows > /var/lib/app/db && echo edited > /etc/app.conf");
    expect(await sh("cat /root/notes /var/lib/app/db /etc/app.conf /etc/motd")).toBe("note-1\nrows\nedited\nmotd v1\n");
    const upper = join(home.dataDir, "systems/keeper/upper");
    expect(readFileSync(join(upper, "root/notes"), "utf8")).toBe("note-1\n");
    expect(existsSync(join(upper, "etc/motd"))).toBe(false); // only what the runs changed is stored
  });

  it("keeps it across a rebuild of the layers beneath", async () => {
    writeFileSync(join(def, "castle.ts"), castleTs("motd v2"));
    const r = await home.run(["run", def, "--plain", "--", "/bin/sh", "-c", "cat /root/notes /var/lib/app/db /etc/app.conf /etc/motd"]);
    expect(r.stderr).toMatch(/building etc/);
    // New layer content shows through where the user changed nothing; the user's own edit wins.
    expect(r.stdout).toBe("note-1\nrows\nedited\nmotd v2\n");
  });

  it("deletions persist too", async () => {
    await sh("rm /etc/app.conf");
    expect(await sh("ls /etc/app.conf 2>&1 || echo gone")).toMatch(/gone\n$/);
  });

  it("keeps each system's state apart", async () => {
    const r = await home.run(["run", other, "--", "/bin/sh", "-c", "cat /root/notes 2>/dev/null || echo no-notes; cat /etc/app.conf"]);
    expect(r.stdout).toBe("no-notes\nstock\n");
    expect(readdirSync(join(home.dataDir, "systems")).sort()).toEqual(["keeper", "other"]);
  });

  it("--ephemeral writes to a throwaway upper that starts empty, and says so", async () => {
    // It starts from the layers alone (the persistent upper may be in use by a running instance,
    // so it cannot be a lower here), and leaves the persistent state as it was.
    const r = await run("cat /root/notes 2>/dev/null || echo no-notes; echo scratch > /root/notes; cat /root/notes", "--ephemeral");
    expect(r.stdout).toBe("no-notes\nscratch\n");
    expect(r.stderr).toMatch(/^castle: --ephemeral starts empty: the \d+ files \(\d+ B\) earlier runs of keeper wrote are not used \(--snapshot starts from them\)$/m);
    expect(await sh("cat /root/notes /var/lib/app/db")).toBe("note-1\nrows\n");
    const tmp = join(home.dataDir, "tmp");
    expect(existsSync(tmp) ? readdirSync(tmp) : []).toEqual([]);
  });

  it("--snapshot starts from the system's files, and leaves them as they were", async () => {
    expect(await sh("cat /root/notes /var/lib/app/db; echo scratch > /root/notes; rm /var/lib/app/db; cat /root/notes", "--snapshot")).toBe("note-1\nrows\nscratch\n");
    expect(await sh("cat /root/notes /var/lib/app/db")).toBe("note-1\nrows\n");
    const both = await run("true", "--snapshot", "--fresh");
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--snapshot starts from the system's files: it cannot be combined with --fresh or --ephemeral/);
  });

  it.skipIf(noPty)("--fresh asks first on a terminal: no keeps everything", async () => {
    const term = new Terminal(home, ["run", def, "--fresh", "--", "/bin/cat", "/root/notes"]);
    try {
      await term.expect(/Discard them\? \[y\/N\] $/);
      term.type("n\r");
      expect(await term.status()).toBe(130);
    } finally {
      term.kill();
    }
    expect(term.text).toMatch(/castle: --fresh discards the \d+ files \(\d+ B\) that earlier runs of keeper wrote \(in \S+\/systems\/keeper\/upper\)\. Discard them\? \[y\/N\] n/);
    expect(term.text).toMatch(/castle: --fresh was not confirmed: nothing was discarded/);
    expect(await sh("cat /root/notes")).toBe("note-1\n");
  });

  it("--fresh wants --yes off a terminal, then discards the state, says what went, and starts clean", async () => {
    const refused = await run("true", "--fresh");
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^castle: --fresh would discard the \d+ files \(\d+ B\) that earlier runs of keeper wrote \(in \S+\); add --yes to confirm when not on a terminal$/m);
    expect(await sh("cat /root/notes")).toBe("note-1\n");
    const r = await run("cat /root/notes 2>/dev/null || echo no-notes; cat /etc/app.conf; echo note-2 > /root/notes", "--fresh", "--yes");
    expect(r.stdout).toBe("no-notes\nstock\n");
    expect(r.stderr).toMatch(/^castle: --fresh: discarding the \d+ files \(\d+ B\) earlier runs of keeper wrote$/m);
    // ...and what the fresh run wrote is the new state.
    expect(await sh("cat /root/notes")).toBe("note-2\n");
  });
});
