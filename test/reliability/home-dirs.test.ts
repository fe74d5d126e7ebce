// Reliability: Castle's own directories cannot be made. A user whose HOME is missing or not
// theirs (uid 65534 with HOME=/nonexistent, as services run) must get one clear error naming
// the variables that move each directory (CASTLE_CACHE_DIR, CASTLE_STATE_DIR, CASTLE_DATA_DIR
// and their XDG fallbacks) and exit 5 — never an internal error with a stack trace — and setting
// those variables must be enough to work without any HOME. A HOME the user cannot even enter
// (another user's, 0700, as /root is) leaves the configuration file unknowable: one clear error
// naming the variables that move it.

import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { busyboxMissing, makeBusyboxRootfs } from "../fixtures/rootfs";
import { cliMissing, describeRun, giveToRunner, makeCliHome, runCastle, type CliResult } from "./helpers/cli";
import { useTempDirs, writeDefinition } from "./helpers/definitions";

const skip = cliMissing() ?? busyboxMissing();
if (skip) console.warn(`skipping home-dir tests: ${skip}`);

const temp = useTempDirs("castle-rel-home");
// Castle runs as uid 65534 only when the tests run as root: then a dir of theirs is another user's.
const notOtherUser = process.getuid?.() === 0 ? undefined : "Castle runs as the test's own user, whose dirs it can enter";
if (!skip && notOtherUser) console.warn(`skipping the closed-HOME case: ${notOtherUser}`);
let def: string;
beforeAll(() => {
  if (skip) return;
  const rootfs = makeBusyboxRootfs(temp("rootfs"));
  def = writeDefinition(temp("def"), {
    "castle.ts": `import { layer, source, system } from "castle";
const base = layer.import({ name: "base", from: source.local(${JSON.stringify(rootfs)}) });
export default system({ name: "homeless", layers: [base] });
`,
  });
});

/** One line naming the directory and why, one hint naming every variable that moves one. */
function clearError(result: CliResult, kind: "store" | "state" | "data", path: string): void {
  expect(result.code, describeRun(result)).toBe(5);
  expect(result.stderr).not.toMatch(/internal error|^\s+at /m);
  expect(result.stderr).toContain(`castle: cannot create the ${kind} directory ${path}`);
  for (const variable of ["CASTLE_CACHE_DIR", "CASTLE_STATE_DIR", "CASTLE_DATA_DIR", "XDG_CACHE_HOME", "HOME"]) {
    expect(result.stderr).toMatch(new RegExp(`^hint: .*\\b${variable}\\b`, "m"));
  }
  // The error is the last thing said: its line, then its hint (a run may print progress before).
  const lines = result.stderr.trim().split("\n");
  expect(lines.at(-2), result.stderr).toMatch(/^castle: cannot create the /);
  expect(lines.at(-1), result.stderr).toMatch(/^hint: /);
}

describe.skipIf(skip)("castle without a usable HOME", () => {
  const noDirs = { HOME: "/nonexistent", CASTLE_CACHE_DIR: undefined, CASTLE_STATE_DIR: undefined, CASTLE_DATA_DIR: undefined };

  it("HOME=/nonexistent: build, run, ps and cache name the variable of the directory they need", async () => {
    const home = makeCliHome();
    clearError(await runCastle(home, ["build", def, "--plain"], { env: noDirs }), "store", "/nonexistent/.cache/castle");
    clearError(await runCastle(home, ["cache", "ls"], { env: noDirs }), "store", "/nonexistent/.cache/castle");
    clearError(await runCastle(home, ["ps"], { env: noDirs }), "state", "/nonexistent/.local/state/castle");
    // With a store of its own, a run still needs somewhere for its instance and the system's files.
    const withStore = { ...noDirs, CASTLE_CACHE_DIR: home.cache };
    clearError(await runCastle(home, ["run", def, "--plain", "--", "/bin/true"], { env: withStore }), "state", "/nonexistent/.local/state/castle");
    clearError(
      await runCastle(home, ["run", def, "--plain", "--", "/bin/true"], { env: { ...withStore, CASTLE_STATE_DIR: home.state } }),
      "data", "/nonexistent/.local/share/castle",
    );
  });

  it("HOME that is not the user's (exists, not writable): the same clear error", async () => {
    const home = makeCliHome();
    const foreign = temp("foreign-home"); // owned by the test runner, mode 0755
    clearError(await runCastle(home, ["build", def, "--plain"], { env: { ...noDirs, HOME: foreign } }), "store", `${foreign}/.cache/castle`);
  });

  it.skipIf(notOtherUser)("HOME that the user cannot enter (another user's, 0700): the configuration file's variables are named", async () => {
    const home = makeCliHome();
    const closed = temp("closed-home"); // the test runner's
    chmodSync(closed, 0o700);
    const env = { HOME: closed, CASTLE_CACHE_DIR: home.cache, CASTLE_STATE_DIR: home.state, CASTLE_DATA_DIR: home.data };
    const r = await runCastle(home, ["build", def, "--plain"], { env });
    expect(r.code, describeRun(r)).toBe(2);
    expect(r.stderr).not.toMatch(/internal error|^\s+at /m);
    expect(r.stderr).toContain(`castle: cannot look for the configuration file ${closed}/.config/castle/config.json: this user cannot enter ${closed}\n`);
    expect(r.stderr).toMatch(/^hint: set XDG_CONFIG_HOME \(or HOME\) to a directory of this user's, or CASTLE_CONFIG to the file to use$/m);
    // Pointing the configuration elsewhere is enough.
    const moved = await runCastle(home, ["build", def, "--plain"], { env: { ...env, XDG_CONFIG_HOME: join(home.dir, "config") } });
    expect(moved.code, describeRun(moved)).toBe(0);
  });

  it("works with no HOME at all once CASTLE_CACHE_DIR, CASTLE_STATE_DIR and CASTLE_DATA_DIR are set", async () => {
    const home = makeCliHome();
    const dirs = join(home.dir, "elsewhere");
    mkdirSync(dirs);
    giveToRunner(dirs);
    const env = { HOME: "/nonexistent", CASTLE_CACHE_DIR: join(dirs, "c"), CASTLE_STATE_DIR: join(dirs, "s"), CASTLE_DATA_DIR: join(dirs, "d") };
    const run = await runCastle(home, ["run", def, "--plain", "--", "/bin/echo", "fine"], { env });
    expect(run.code, describeRun(run)).toBe(0);
    expect(run.stdout).toBe("fine\n");
  });
});
