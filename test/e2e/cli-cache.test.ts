// The local store through `castle cache` (bundled binary, uid 65534): ls and stats describe what
// builds left, prune removes what no system uses any more (or everything, by size) without
// breaking the systems that still use the rest, and verify finds a tampered tree, removes it,
// and exits 5 — after which a run simply rebuilds the layer.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliWorld, cliMissing, definition, type CliHome } from "./helpers/cli-harness";

const skip = cliMissing();
if (skip) console.warn(`skipping cli-cache: ${skip}`);

interface Record {
  name: string;
  key: string;
  digest: string;
  bytes: number;
  origin: string;
}

describe.skipIf(skip)("castle cache ls, stats, prune, verify", () => {
  let world: CliWorld;
  let home: CliHome;
  let def: string;

  const castleTs = (motd: string) =>
    definition(world.rootfs, `const motd = layer({ name: "motd", runDeps: [base], script: "mkdir -p /etc && echo '${motd}' > /etc/motd" });
export default system({ name: "cached", layers: [motd], entrypoint: ["/bin/cat", "/etc/motd"] });`);
  const ls = async (): Promise<Record[]> => {
    const r = await home.run(["cache", "ls", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Record[];
  };
  const stats = async () => (await home.run(["cache", "stats"])).stdout;

  beforeAll(() => {
    world = CliWorld.create();
    home = world.home();
    def = world.dir("def", { "castle.ts": castleTs("v1") });
  });
  afterAll(() => world?.dispose("cli-cache"));

  it("an empty store", async () => {
    expect(await ls()).toEqual([]);
    expect(await stats()).toMatch(/^builds +0 recorded$/m);
    expect((await home.run(["cache", "verify"])).stdout).toBe("checked 0 trees: 0 corrupt, 0 keys removed\n");
  });

  it("ls and stats after a build", async () => {
    expect((await home.run(["run", def])).stdout).toBe("v1\n");
    const records = await ls();
    expect(records.map((r) => r.name).sort()).toEqual(["base", "motd", "source:rootfs"]);
    expect(records.every((r) => r.origin === "built" && /^[0-9a-f]{64}$/.test(r.key) && /^[0-9a-f]{64}$/.test(r.digest))).toBe(true);
    const table = (await home.run(["cache", "ls"])).stdout;
    expect(table).toMatch(/^motd +[0-9a-f]{12} → [0-9a-f]{12} +\d+ B +built +\d{4}-\d\d-\d\dT/m);
    const s = await stats();
    expect(s).toMatch(new RegExp(`^store +${home.cacheDir}$`, "m"));
    expect(s).toMatch(/^builds +1 recorded$/m);
    expect(s).toMatch(/^layers +0 cached, 0 pulled, 2 built \(hit rate 0%\)$/m);
    // A fully cached run is not recorded (it writes nothing, to stay fast).
    await home.run(["run", def]);
    expect(await stats()).toMatch(/^builds +1 recorded$/m);
  });

  it("prune removes what no system uses any more, and keeps what one does", async () => {
    writeFileSync(join(def, "castle.ts"), castleTs("v2"));
    expect((await home.run(["run", def])).stdout).toBe("v2\n");
    expect(await stats()).toMatch(/^layers +1 cached, 0 pulled, 3 built/m);
    const before = await ls();
    const [old, current] = before.filter((r) => r.name === "motd");
    expect(current).toBeDefined();
    const baseKey = before.find((r) => r.name === "base")!.key;

    const dry = await home.run(["cache", "prune", "--dry-run"]);
    expect(dry.stdout).toMatch(/^would remove \d+ keys and 1 trees \(\d+ B\); kept [\d.]+ MB\n$/);
    expect(await ls()).toEqual(before);

    const prune = await home.run(["cache", "prune"]);
    expect(prune.code).toBe(0);
    expect(prune.stdout).toMatch(/^removed \d+ keys and 1 trees/);
    const after = (await ls()).map((r) => r.key);
    expect(after).not.toContain(old!.key);
    expect(after).toEqual(expect.arrayContaining([current!.key, baseKey]));
    const run = await home.run(["run", def, "--plain"]);
    expect(run.stdout).toBe("v2\n");
    expect(run.stderr).toBe(""); // nothing the system uses was removed
  });

  it("prune --max-size removes the least recently used until the store fits", async () => {
    const r = await home.run(["cache", "prune", "--max-size", "0"]);
    expect(r.stdout).toMatch(/^removed \d+ keys and 2 trees .*; kept 0 B\n$/);
    expect(await ls()).toEqual([]);
    const run = await home.run(["run", def, "--plain"]);
    expect(run.stdout).toBe("v2\n");
    expect(run.stderr).toMatch(/building motd/);
  });

  it("verify finds a tampered tree, removes it and exits 5; the next run rebuilds it", async () => {
    const motd = (await ls()).find((r) => r.name === "motd")!;
    writeFileSync(join(home.cacheDir, "trees", motd.digest, "etc/motd"), "tampered\n");
    const verify = await home.run(["cache", "verify"]);
    expect(verify.code).toBe(5);
    expect(verify.stderr).toBe(`corrupt: ${motd.digest}\n`);
    expect(verify.stdout).toMatch(/^checked 2 trees: 1 corrupt, 1 keys removed\n$/);
    expect((await ls()).map((r) => r.name).sort()).toEqual(["base", "source:rootfs"]);

    const run = await home.run(["run", def, "--plain"]);
    expect(run.stdout).toBe("v2\n");
    expect(run.stderr).toMatch(/building motd/);
    expect((await home.run(["cache", "verify"])).code).toBe(0);
  });
});
