// `castle why` through the bundled binary as uid 65534: after a change it names the layer that
// must be rebuilt and the input that changed (script, env, a source, an override), says which
// dependents wait on its new output, and --layer / --json narrow and shape the answer.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliWorld, cliMissing, definition, type CliHome } from "./helpers/cli-harness";

const skip = cliMissing();
if (skip) console.warn(`skipping cli-why: ${skip}`);

describe.skipIf(skip)("castle why", () => {
  let world: CliWorld;
  let home: CliHome;
  let def: string;

  const castleTs = (toolsScript: string, appEnv: string) =>
    definition(
      world.rootfs,
      `const tools = layer({ name: "tools", runDeps: [base], script: ${JSON.stringify(toolsScript)} });
const app = layer({
  name: "app", buildDeps: [base], env: { MODE: ${JSON.stringify(appEnv)} },
  mounts: { "/src": source.local("./app", { name: "app-src" }) },
  script: "mkdir -p /opt && cp /src/VERSION /opt/VERSION",
});
const top = layer({ name: "top", runDeps: [app, base], script: "mkdir -p /etc && cp /opt/VERSION /etc/top" });
export default system({ name: "why", layers: [tools, top] });`,
    );

  beforeAll(async () => {
    world = CliWorld.create();
    home = world.home();
    def = world.dir("def", { "castle.ts": castleTs("echo tools > /tools", "fast"), "app/VERSION": "v1\n" });
  });
  afterAll(() => world?.dispose("cli-why"));

  it("before any build: the first layer is new, the rest wait for its output", async () => {
    const r = await home.run(["why", def]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^base: must be built — never built:$/m);
    expect(r.stdout).toMatch(/^tools: rebuilt if the new output of base differs$/m);
    expect(r.stdout).toMatch(/^app: rebuilt if the new output of base differs$/m);
    expect(r.stdout).toMatch(/^top: rebuilt if the new output of app, base differs$/m);
  });

  it("after a build: everything is cached", async () => {
    expect((await home.run(["build", def])).code).toBe(0);
    const r = await home.run(["why", def]);
    expect(r.stdout.trim().split("\n").sort()).toEqual(
      expect.arrayContaining([expect.stringMatching(/^app: cached \([0-9a-f]{12}\)$/), expect.stringMatching(/^top: cached/), expect.stringMatching(/^tools: cached/)]),
    );
    expect(r.stdout).not.toMatch(/must be built/);
  });

  it("names the changed input: a script, an env value, a source file", async () => {
    writeFileSync(join(def, "castle.ts"), castleTs("echo tools v2 > /tools", "slow"));
    writeFileSync(join(def, "app/VERSION"), "v2\n");
    const r = await home.run(["why", def]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^tools: must be built — inputs changed:\n {4}script changed$/m);
    expect(r.stdout).toMatch(/^app: must be built — inputs changed:$/m);
    expect(r.stdout).toMatch(/^ {4}env MODE: "fast" → "slow"$|^ {4}env MODE changed/m);
    // Which files changed, not only two digests.
    expect(r.stdout).toMatch(/^ {4}source app-src at \/src: local:\w+ → local:\w+ \(changed VERSION\)$/m);
    expect(r.stdout).toMatch(/^top: rebuilt if the new output of app differs$/m);
    expect(r.stdout).toMatch(/^base: cached/m);
  });

  it("--layer shows one layer; --json is machine-readable", async () => {
    const one = await home.run(["why", def, "--layer", "tools"]);
    expect(one.stdout).toBe("tools: must be built — inputs changed:\n    script changed\n");
    const json = await home.run(["why", def, "--json"]);
    const plans = JSON.parse(json.stdout) as { layer: string; status: string; reason?: { kind: string; changes: string[] } }[];
    expect(Object.fromEntries(plans.map((p) => [p.layer, p.status]))).toEqual({ base: "local", tools: "build", app: "build", top: "blocked" });
    expect(plans.find((p) => p.layer === "tools")!.reason).toEqual({ kind: "changed", changes: ["script changed"] });
  });

  it("names an override as the changed source", async () => {
    expect((await home.run(["build", def])).code).toBe(0);
    const v3 = world.dir("app-v3", { VERSION: "v3\n" });
    const r = await home.run(["why", def, "--layer", "app"], { env: { CASTLE_OVERRIDE_app_src: v3 } });
    expect(r.stdout).toMatch(/^app: must be built — inputs changed:\n {4}source app-src at \/src: local:\w+ → local:\w+ \(changed VERSION(; [^)]+)?\)\n$/);
  });
});
