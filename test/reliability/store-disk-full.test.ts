// Reliability: the disk fills up. The store is a small tmpfs (mounted by the test, so it needs
// root; it skips with the reason otherwise) and `castle build` runs on it as uid 65534. Space runs
// out while importing a source, while a build script writes, and right after a script filled
// the disk to the brim (so the commit, the record and the log hit ENOSPC). Each time the build
// must fail with one clear error and a stable exit status, leave nothing partial (no record
// without its tree, nothing in tmp/, no temp files beside the records), and succeed once space
// is freed (the tmpfs is remounted bigger).

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busyboxMissing, makeBusyboxRootfs } from "../fixtures/rootfs";
import { builtLayers, cliMissing, describeRun, makeCliHome, NOBODY, runCastle, type CliHome } from "./helpers/cli";
import { useTempDirs, writeDefinition } from "./helpers/definitions";
import { checkStore } from "./helpers/store-check";

/** Why a tmpfs cannot be mounted here, or undefined when it can. */
function tmpfsMissing(): string | undefined {
  if (process.getuid?.() !== 0) return "mounting a tmpfs needs root";
  const probe = mkdtempSync(join(tmpdir(), "castle-rel-tmpfs-probe-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe], { stdio: "pipe" });
    execFileSync("umount", [probe], { stdio: "pipe" });
    return undefined;
  } catch (error) {
    return `cannot mount a tmpfs: ${String((error as { stderr?: Buffer }).stderr ?? error).trim()}`;
  } finally {
    rmdirSync(probe);
  }
}

const skip = cliMissing() ?? busyboxMissing() ?? tmpfsMissing();
if (skip) console.warn(`skipping disk-full tests: ${skip}`);

const temp = useTempDirs("castle-rel-full");
const mounts: string[] = [];

/** A fresh CLI home whose store is a tmpfs of this size, owned by the user castle runs as. */
function homeOnTmpfs(size: string): CliHome {
  const home = makeCliHome();
  mkdirSync(home.cache);
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size},uid=${NOBODY},gid=${NOBODY},mode=0755`, "tmpfs", home.cache]);
  mounts.push(home.cache);
  return home;
}

function resize(home: CliHome, size: string): void {
  execFileSync("mount", ["-o", `remount,size=${size}`, home.cache]);
}

let rootfs: string;
beforeAll(() => {
  if (!skip) rootfs = makeBusyboxRootfs(temp("rootfs"));
});
afterAll(() => {
  for (const mount of mounts.splice(0)) execFileSync("umount", ["-l", mount]);
});

function definition(fill: string): string {
  return writeDefinition(temp("def"), {
    "castle.ts": `import { layer, source, system } from "castle";
const base = layer.import({ name: "base", from: source.local(${JSON.stringify(rootfs)}) });
const small = layer({ name: "small", runDeps: [base], script: "echo small > /small" });
const fill = layer({ name: "fill", runDeps: [small], script: ${JSON.stringify(fill)} });
export default system({ name: "full", layers: [fill] });
`,
  });
}

/** The build fails cleanly: one "castle: …" line, no stack, nothing partial in the store. */
function expectCleanFailure(home: CliHome, result: Awaited<ReturnType<typeof runCastle>>, status: number, message: RegExp): void {
  expect(result.code, describeRun(result)).toBe(status);
  expect(result.stderr).toMatch(message);
  expect(result.stderr, describeRun(result)).not.toMatch(/internal error|\n\s+at /);
  expect(result.stdout).toBe("");
  expect(checkStore(home.cache).problems).toEqual([]);
}

describe.skipIf(skip)("store: disk full", () => {
  it("fails clearly when a source does not fit, and succeeds once there is room", async () => {
    const home = homeOnTmpfs("1m");
    const def = definition("echo fill > /fill");
    const full = await runCastle(home, ["build", def, "--plain"]);
    expectCleanFailure(home, full, 4, /^castle: .*(no space left on device|ENOSPC)/im);
    resize(home, "64m");
    const ok = await runCastle(home, ["build", def, "--plain"]);
    expect(ok.code, describeRun(ok)).toBe(0);
    expect(checkStore(home.cache).problems).toEqual([]);
  });

  it("fails a build whose script runs out of space, with the script's complaint, and succeeds once there is room", async () => {
    const home = homeOnTmpfs("8m");
    const def = definition("head -c 16000000 /dev/zero > /fill");
    const full = await runCastle(home, ["build", def, "--plain"]);
    // Overlayfs passes the full upper dir on as ENOSPC or EIO, depending on the write.
    expectCleanFailure(home, full, 1, /No space left on device|I\/O error/);
    expect(full.stderr).toMatch(/failed fill/);
    resize(home, "64m");
    const ok = await runCastle(home, ["build", def, "--plain"]);
    expect(ok.code, describeRun(ok)).toBe(0);
    expect(builtLayers(ok.stderr)).toEqual(["fill"]);
    expect(checkStore(home.cache).problems).toEqual([]);
  });

  it("fails cleanly when a script leaves the disk full, so the commit, the record and the log cannot be written", async () => {
    const home = homeOnTmpfs("8m");
    // The script succeeds having filled every byte; Castle's own writes come next.
    const def = definition("head -c 16000000 /dev/zero > /fill || true; echo filled");
    const full = await runCastle(home, ["build", def, "--plain"]);
    // A store that cannot be written is the store failing (exit 5), not the layer's build.
    expectCleanFailure(home, full, 5, /^castle: cannot record fill in the store .*no space left on device/m);
    expect(full.stderr).toMatch(/^hint: is its disk full\?/m);
    resize(home, "64m");
    const ok = await runCastle(home, ["build", def, "--plain"]);
    expect(ok.code, describeRun(ok)).toBe(0);
    expect(checkStore(home.cache).problems).toEqual([]);
    const verify = await runCastle(home, ["cache", "verify"]);
    expect(verify.code, describeRun(verify)).toBe(0);
  });
});
