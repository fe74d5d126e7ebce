// Source overrides through the bundled binary as uid 65534: `--override name=dir` and
// CASTLE_OVERRIDE_<name>=dir build with a local directory instead of a declared source, and only
// the layers that depend on that source rebuild; dropping the override goes back to the cache.
// `castle source` copies a declared source out, ready to patch and build with.

import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliWorld, cliMissing, definition, type CliHome } from "./helpers/cli-harness";

const skip = cliMissing();
if (skip) console.warn(`skipping cli-overrides: ${skip}`);

/** Layer names the plain output says were built. */
function built(stderr: string): string[] {
  return [...stderr.matchAll(/^building (\S+)/gm)].map((m) => m[1]!).sort();
}

describe.skipIf(skip)("source overrides", () => {
  let world: CliWorld;
  let home: CliHome;
  let def: string;
  let v2: string;
  let v3: string;

  beforeAll(async () => {
    world = CliWorld.create();
    home = world.home();
    def = world.dir("def", {
      "castle.ts": definition(
        world.rootfs,
        `const tools = layer({ name: "tools", runDeps: [base], script: "mkdir -p /etc && echo tools > /etc/tools" });
const app = layer({
  name: "app", buildDeps: [base], mounts: { "/src": source.local("./app", { name: "app-src" }) },
  script: "mkdir -p /opt && cp /src/VERSION /opt/VERSION",
});
const top = layer({ name: "top", runDeps: [app, base], script: "mkdir -p /etc && sed s/^/top-/ /opt/VERSION > /etc/top" });
export default system({ name: "ov", layers: [tools, top], entrypoint: ["/bin/cat", "/opt/VERSION", "/etc/top", "/etc/tools"] });`,
      ),
      "app/VERSION": "v1\n",
    });
    v2 = world.dir("app-v2", { VERSION: "v2\n" });
    v3 = world.dir("app-v3", { VERSION: "v3\n" });
    const first = await home.run(["run", def, "--plain"]);
    expect(first.code, first.stderr).toBe(0);
    expect(built(first.stderr)).toEqual(["app", "tools", "top"]);
    expect(first.stdout).toBe("v1\ntop-v1\ntools\n");
  });
  afterAll(() => world?.dispose("cli-overrides"));

  it("--override rebuilds the layers that use the source, and only them", async () => {
    const r = await home.run(["run", def, "--plain", "--override", `app-src=${v2}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("v2\ntop-v2\ntools\n");
    expect(built(r.stderr)).toEqual(["app", "top"]);
    // The reason names the files that differ between the source and the override.
    expect(r.stderr).toMatch(/^building app \(source app-src at \/src: local:\w+ → local:\w+ \(changed [^)]+\)\)$/m);
    expect(r.stderr).toMatch(/^building top \(dependency app: output \w+ → \w+\)$/m);
    expect(r.stderr).toMatch(/cached tools/);
  });

  it("CASTLE_OVERRIDE_<name> does the same (the name with - as _)", async () => {
    const r = await home.run(["run", def, "--plain"], { env: { CASTLE_OVERRIDE_app_src: v3 } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("v3\ntop-v3\ntools\n");
    expect(built(r.stderr)).toEqual(["app", "top"]);
  });

  it("an override seen before is a cache hit; without one the pinned source is back", async () => {
    const again = await home.run(["run", def, "--plain", "--override", `app-src=${v2}`]);
    expect(again.stdout).toBe("v2\ntop-v2\ntools\n");
    expect(again.stderr).toBe("");
    const none = await home.run(["run", def, "--plain"]);
    expect(none.stdout).toBe("v1\ntop-v1\ntools\n");
    expect(none.stderr).toBe("");
  });

  it("the flag wins over the environment", async () => {
    const r = await home.run(["run", def, "--override", `app_src=${v2}`], { env: { CASTLE_OVERRIDE_app_src: v3 } });
    expect(r.stdout).toBe("v2\ntop-v2\ntools\n");
  });

  it("castle source lists the sources, and copies one out to patch and build with", async () => {
    const list = await home.run(["source", def]);
    expect(list.stdout).toBe(`rootfs\tlocal\t${world.rootfs}\napp-src\tlocal\t${def}/app\n`);
    const out = `${world.ownedDir("patch-parent")}/app`;
    const r = await home.run(["source", def, "--name", "app-src", "--out", out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${out}\n`);
    expect(r.stderr).toBe(`build with it: CASTLE_OVERRIDE_app_src=${out} castle run ${def}\n`);
    expect(statSync(out).mode & 0o700, "the copy is the user's to edit (the store's tree is sealed)").toBe(0o700);
    writeFileSync(join(out, "VERSION"), "patched\n");
    const patched = await home.run(["run", def], { env: { CASTLE_OVERRIDE_app_src: out } });
    expect(patched.stdout).toBe("patched\ntop-patched\ntools\n");
  });

  it("an override pointing nowhere is a one-line error", async () => {
    const r = await home.run(["run", def, "--override", `app-src=${world.base}/nowhere`]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^castle: --override app-src=\S+\/nowhere points at \S+, which is not a directory/);
    expect(r.stderr.trim().split("\n").length).toBeLessThanOrEqual(2);
  });
});
