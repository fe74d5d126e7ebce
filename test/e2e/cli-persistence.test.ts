// Each system's persistent upper dir, through the bundled binary as uid 65534: what a run writes
// (home, /var, edits to /etc) is there the next run, survives a rebuild of the layers beneath it,
// lives under $XDG_DATA_HOME/castle/systems/<name>, is per system; --fresh starts clean and
// --ephemeral runs on the layers alone, leaving it untouched, and discards its own writes.

import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliWorld, cliMissing, definition, type CliHome } from "./helpers/cli-harness";

const skip = cliMissing();
if (skip) console.warn(`skipping cli-persistence: ${skip}`);

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
  const sh = async (script: string, ...flags: string[]) => {
    const r = await home.run(["run", def, ...flags, "--", "/bin/sh", "-c", script]);
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

  it("--ephemeral writes to a throwaway upper, removed after the run", async () => {
    // It starts from the layers alone (the persistent upper may be in use by a running instance,
    // so it cannot be a lower here), and leaves the persistent state as it was.
    expect(await sh("cat /root/notes 2>/dev/null || echo no-notes; echo scratch > /root/notes; cat /root/notes", "--ephemeral")).toBe(
      "no-notes\nscratch\n",
    );
    expect(await sh("cat /root/notes /var/lib/app/db")).toBe("note-1\nrows\n");
    const tmp = join(home.dataDir, "tmp");
    expect(existsSync(tmp) ? readdirSync(tmp) : []).toEqual([]);
  });

  it("--fresh discards the state and starts clean", async () => {
    expect(await sh("cat /root/notes 2>/dev/null || echo no-notes; cat /etc/app.conf; echo note-2 > /root/notes", "--fresh")).toBe("no-notes\nstock\n");
    // ...and what the fresh run wrote is the new state.
    expect(await sh("cat /root/notes")).toBe("note-2\n");
  });
});
