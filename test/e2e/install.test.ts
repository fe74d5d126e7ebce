// Setting Castle up as a newcomer does, from the README: after `npm ci` the `castle` bin is
// there (npm links bins before the build writes dist/, so the build links the launcher itself);
// the README's first commands work in a root shell as written (no sudo, apt-get update first)
// and install exactly what .ci/run installs; .ci/run depends on no clone path.

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./helpers/cli-harness";

const readme = readFileSync(join(ROOT, "README.md"), "utf8");
const ci = readFileSync(join(ROOT, ".ci/run"), "utf8");

describe("installing Castle", () => {
  it("links the castle bin at npm ci, to the launcher the build wrote, and it runs", () => {
    const bin = JSON.parse(readFileSync(join(ROOT, "packages/cli/package.json"), "utf8")).bin.castle as string;
    expect(existsSync(join(ROOT, "node_modules/.bin/castle"))).toBe(true);
    expect(realpathSync(join(ROOT, "node_modules/.bin/castle"))).toBe(realpathSync(join(ROOT, "packages/cli", bin)));
    expect(execFileSync(join(ROOT, "node_modules/.bin/castle"), ["--version"], { encoding: "utf8" })).toMatch(/^castle \d+\.\d+\.\d+/);
  });

  it("has README setup commands that work in a root shell, installing what .ci/run installs", () => {
    const block = /## Set up and test[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? "";
    const [apt, ...rest] = block.trim().split("\n");
    expect(apt).toMatch(/^apt-get update && apt-get install -y /); // root has no sudo; a fresh image no package lists
    expect(rest).toEqual(["npm ci", "npm test"]);
    const readmePackages = apt!.replace(/^.*apt-get install -y /, "").split(/\s+/).sort();
    const ciPackages = /^APT_PACKAGES="([^"]+)"/m.exec(ci)?.[1]?.split(/\s+/).sort();
    expect(readmePackages).toEqual(ciPackages);
  });

  it("runs .ci/run from wherever the clone is", () => {
    expect(ci).toMatch(/^cd "\$\(dirname "\$0"\)\/\.\."$/m);
    expect(ci).not.toMatch(/\/(root|home|work)\//);
    expect(ci).toMatch(/apt-get update/);
  });
});
