// The history of runs through the bundled binary as uid 65534: a build that did work is
// recorded and `castle history` lists it (a fully cached one is not); `castle why` tells what
// the last run (or a given one) did to each layer and why — a changed local source by the files
// that changed; `castle log <layer>` prints a layer's build log, and follows one being built;
// `--timings` writes the run's timeline as a page that headless Chromium draws.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromiumMissing, dumpDom } from "../../packages/cli/test/helpers/chromium";
import { CliWorld, cliMissing, definition, type CliHome } from "./helpers/cli-harness";

const skip = cliMissing();
if (skip) console.warn(`skipping cli-history: ${skip}`);
const noChromium = chromiumMissing();
if (!skip && noChromium) console.warn(`skipping the timings page check of cli-history: ${noChromium}`);

describe.skipIf(skip)("the history of runs", () => {
  let world: CliWorld;

  /** A home, a local source and a definition of their own, so that each test stands alone. */
  const setup = (name: string): { home: CliHome; def: string; src: string } => {
    const home = world.home(`${name}-home`);
    const src = world.dir(`${name}-src`, { "main.c": "int main() { return 0; }\n", "util.c": "int util;\n" });
    const def = world.dir(`${name}-def`, {
      "castle.ts": definition(
        world.rootfs,
        `const app = layer({
  name: "app",
  runDeps: [base],
  mounts: { "/src": source.local(${JSON.stringify(src)}, { name: "app-src" }) },
  script: "for i in 1 2 3; do echo compiling part $i; done; mkdir -p /opt && cp /src/*.c /opt/",
});
const slow = layer({ name: "slow", runDeps: [base], script: "for i in 1 2 3 4 5 6; do echo slow-step-$i; sleep 0.3; done; echo done > /slow" });
export default system({ name: "hist", layers: [app, slow] });`,
      ),
    });
    return { home, def, src };
  };

  beforeAll(() => {
    world = CliWorld.create();
  });
  afterAll(() => world?.dispose("cli-history"));

  it("records a build, says why each layer was built, and writes a timings page Chromium draws", async () => {
    const { home, def } = setup("timings");
    const r = await home.run(["build", def, "--plain", "--timings"]);
    expect(r.code, r.stderr).toBe(0);
    const page = /^castle: timings of this run: (\S+\.html)$/m.exec(r.stderr)?.[1];
    expect(page, r.stderr).toBeDefined();

    const history = await home.run(["history"]);
    expect(history.stdout).toMatch(/^ 1 {2}\S+ +\d+ s ago +hist +build +ok +\d+\.\ds {2}2 built, 1 imported$/m);
    const why = await home.run(["why"]);
    expect(why.code, why.stderr).toBe(0);
    expect(why.stdout).toMatch(/^run \S+ of hist: castle build, .* succeeded in \d+\.\ds$/m);
    expect(why.stdout).toMatch(/^ {2}app: built in \d+\.\ds — never built before under this name$/m);
    expect(why.stdout).toMatch(/^ {2}base: imported in \d+\.\ds/m);

    if (!noChromium) {
      const dom = dumpDom(page!);
      expect(dom).toMatch(/<g class="layer" data-layer="app" data-outcome="built"/);
      expect(dom).toMatch(/<g class="layer" data-layer="slow" data-outcome="built" data-critical="true">/);
      expect(dom).toMatch(/<polyline id="cpu" points="[^"]+"/);
    }
  });

  it("a fully cached run is not recorded; a changed local source is explained by its files", async () => {
    const { home, def, src } = setup("changes");
    expect((await home.run(["build", def, "--plain"])).code).toBe(0);
    const before = (await home.run(["history", "--json"])).stdout;
    const cached = await home.run(["build", def, "--plain"]);
    expect(cached.code).toBe(0);
    expect((await home.run(["history", "--json"])).stdout).toBe(before);

    writeFileSync(join(src, "main.c"), "int main() { return 1; }\n");
    writeFileSync(join(src, "extra.c"), "int extra;\n");
    const changed = await home.run(["build", def, "--plain"]);
    expect(changed.code, changed.stderr).toBe(0);
    expect(changed.stderr).toMatch(/^building app \(source app-src at \/src: local:[0-9a-f]{12} → local:[0-9a-f]{12} \(changed main\.c; added extra\.c\)\)$/m);
    const why = await home.run(["why", def, "--run", "last", "--layer", "app"]);
    expect(why.stdout).toMatch(/^ {2}app: built in \d+\.\ds — source app-src at \/src: local:\w+ → local:\w+ \(changed main\.c; added extra\.c\)$/m);
    expect(why.stdout).not.toMatch(/slow/);
    const first = await home.run(["why", "--run", "2"]);
    expect(first.stdout).toMatch(/^ {2}app: built in \d+\.\ds — never built before under this name$/m);
    const none = await home.run(["why", "--run", "9"]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^castle: there is no run "9": 2 are recorded$/m);
  });

  it("prints a layer's log, and follows a layer while it builds", async () => {
    const { home, def } = setup("logs");
    expect((await home.run(["build", def, "--plain"])).code).toBe(0);
    const log = await home.run(["log", "app"]);
    expect(log.code, log.stderr).toBe(0);
    expect(log.stdout).toMatch(/^compiling part 3$/m);
    const typo = await home.run(["log", "ap"]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/no recorded run built or found a layer named "ap" \(did you mean "app"\?\)/);

    const build = home.start(["build", def, "--plain", "--rebuild", "slow"]);
    await build.waitFor(/building slow/, 30_000);
    const follow = await home.run(["log", "slow", "-f"], { timeoutMs: 30_000 });
    const built = await build.exited;
    expect(built.code, built.stderr).toBe(0);
    expect(follow.code, follow.stderr).toBe(0);
    for (let i = 1; i <= 6; i++) expect(follow.stdout).toContain(`slow-step-${i}\n`);
    expect(follow.stdout).toMatch(/castle: done in/);
  });
});
