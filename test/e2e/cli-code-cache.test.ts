// The launcher's V8 code cache, through the bundled binary as uid 65534: the first run of a
// command leaves a cache in the user's store (removing other builds' caches); later runs use it
// as it is (not rewritten) and still load what they import at run time (the compiled castle.ts);
// a damaged cache is ignored and replaced, never fatal.

import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliWorld, cliMissing, definition, giveToUser, type CliHome } from "./helpers/cli-harness";

const skip = cliMissing();
if (skip) console.warn(`skipping cli-code-cache: ${skip}`);

describe.skipIf(skip)("castle's code cache", () => {
  let world: CliWorld;
  let home: CliHome;
  let def: string;

  beforeAll(() => {
    world = CliWorld.create();
    home = world.home();
    def = world.dir("def", {
      "castle.ts": definition(world.rootfs, `export default system({ name: "cc", layers: [base], entrypoint: ["/bin/echo", "hi"] });`),
    });
  });
  afterAll(() => world?.dispose("cli-code-cache"));

  const cacheOf = (command: string): string | undefined => {
    const files = readdirSync(join(home.cacheDir, "code")).filter((f) => f.endsWith(`-${command}.v8`));
    return files.length === 1 ? join(home.cacheDir, "code", files[0]!) : undefined;
  };

  it("is made by a command's first run and used as it is by the next", async () => {
    // What an earlier build of Castle left: removed when this one writes its own.
    const stale = join(home.cacheDir, "code", "0123456789abcdef-v20.0.0-x64-build.v8");
    mkdirSync(join(home.cacheDir, "code"), { recursive: true });
    writeFileSync(stale, "old");
    giveToUser(join(home.dir, ".cache"));
    const first = await home.run(["build", def]);
    expect(first.code, first.stderr).toBe(0);
    const file = cacheOf("build");
    expect(file).toBeDefined();
    expect(existsSync(stale)).toBe(false);
    const made = readFileSync(file!);
    // Run from the cache: loading castle.ts goes through import(), which must still work.
    const second = await home.run(["build", def]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toBe(first.stdout);
    expect(readFileSync(file!).equals(made)).toBe(true);
    const run = await home.run(["run", def]);
    expect(run.stdout).toBe("hi\n");
    expect(cacheOf("run")).toBeDefined();
  });

  it("ignores a damaged cache and writes a good one in its place", async () => {
    await home.run(["build", def]);
    const file = cacheOf("build")!;
    const damaged = Buffer.from("not a code cache");
    writeFileSync(file, damaged);
    const r = await home.run(["build", def]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/internal error/);
    const replaced = readFileSync(file);
    expect(replaced.equals(damaged)).toBe(false);
    expect(replaced.length).toBeGreaterThan(1000);
  });
});
