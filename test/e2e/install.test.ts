// Setting Castle up as a newcomer does, from the README: after `npm ci` the `castle` bin is
// there (npm links bins before the build writes dist/, so the build links the launcher itself);
// the README's first commands work in a root shell as written (no sudo, apt-get update first)
// and install exactly what .ci/run installs; .ci/run depends on no clone path; a copy of the
// bundle under any directory name runs definitions as the original does.

import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { removeTree } from "../../packages/cache/src/index";
import { makeBusyboxRootfs } from "../fixtures/rootfs";
import { cliMissing, ROOT } from "./helpers/cli-harness";

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

  it.skipIf(cliMissing())("runs from a copy of its bundle in a directory of any name: a definition's relative paths stay its own", () => {
    // Beside node_modules, so that the bundle's external packages resolve, as in an install.
    const copy = join(ROOT, "node_modules", `.castle-copy-${process.pid}`, "lib");
    const work = mkdtempSync(join(tmpdir(), "castle-copy-"));
    try {
      cpSync(join(ROOT, "packages/cli/dist"), copy, { recursive: true });
      const def = join(work, "def");
      mkdirSync(def);
      cpSync(makeBusyboxRootfs(work), join(def, "rootfs"), { recursive: true, verbatimSymlinks: true });
      writeFileSync(join(def, "castle.ts"), `import { layer, source, system } from "castle";
const base = layer.import({ name: "base", from: source.local("./rootfs") });
export default system({ name: "copied", layers: [base] });
`);
      const env = { PATH: process.env.PATH, HOME: work, CASTLE_CACHE_DIR: join(work, "cache"), CASTLE_STATE_DIR: join(work, "state"), CASTLE_DATA_DIR: join(work, "data") };
      const r = spawnSync(process.execPath, [join(copy, "castle.cjs"), "build", def, "--plain"], { env, encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^[0-9a-f]{64}\n$/); // the system's digest
    } finally {
      removeTree(join(copy, ".."));
      removeTree(work);
    }
  });

  it("runs .ci/run from wherever the clone is", () => {
    expect(ci).toMatch(/^cd "\$\(dirname "\$0"\)\/\.\."$/m);
    expect(ci).not.toMatch(/\/(root|home|work)\//);
    expect(ci).toMatch(/apt-get update/);
  });
});
