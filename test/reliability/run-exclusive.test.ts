// Reliability: one persistent instance per system. Several `castle run`s of one system started
// at the same moment must never both start (two instances would share one overlay upper dir,
// which the kernel calls undefined behaviour): exactly one runs and the others are refused with
// CASTLE_INSTANCE_BUSY, every round. --ephemeral still starts a separate instance, and a run
// killed with -9 does not keep its system "running" for the next one.

import { beforeAll, describe, expect, it } from "vitest";
import { busyboxMissing, makeBusyboxRootfs } from "../fixtures/rootfs";
import { cliMissing, collect, describeRun, makeCliHome, runCastle, spawnCastle, type CliResult } from "./helpers/cli";
import { useTempDirs, writeDefinition } from "./helpers/definitions";
import { SLOW } from "./helpers/random";

const skip = cliMissing() ?? busyboxMissing();
if (skip) console.warn(`skipping exclusive-run tests: ${skip}`);

const temp = useTempDirs("castle-rel-excl");
let rootfs: string;
let def: string;
beforeAll(() => {
  if (skip) return;
  rootfs = makeBusyboxRootfs(temp("rootfs"));
  def = writeDefinition(temp("def"), {
    "castle.ts": `import { layer, source, system } from "castle";
const base = layer.import({ name: "base", from: source.local(${JSON.stringify(rootfs)}) });
export default system({ name: "excl", layers: [base] });
`,
  });
});

const ROUNDS = SLOW ? 20 : 6;
const AT_ONCE = 3;

function refused(result: CliResult): boolean {
  return result.code === 2 && /^castle: system excl is already running as excl-[0-9a-f]{6}$/m.test(result.stderr)
    && /^hint: .*castle exec excl-[0-9a-f]{6}.*--ephemeral/m.test(result.stderr);
}

describe.skipIf(skip)("castle run: one persistent instance per system", () => {
  it(`${AT_ONCE} runs at once, ${ROUNDS} rounds: one starts, the others are refused, every round`, async () => {
    const home = makeCliHome();
    const warm = await runCastle(home, ["build", def, "--plain"]);
    expect(warm.code, describeRun(warm)).toBe(0);
    for (let round = 0; round < ROUNDS; round++) {
      // Each writes its own mark into the shared upper dir and lists the marks it sees.
      const results = await Promise.all(
        Array.from({ length: AT_ONCE }, (_, i) =>
          collect(spawnCastle(home, ["run", def, "--plain", "--", "/bin/sh", "-c", `touch /root/r${round}-${i}; sleep 2; ls /root`]), 120_000),
        ),
      );
      const started = results.filter((r) => r.code === 0);
      const summary = results.map(describeRun).join("\n");
      expect(started.length, `round ${round}\n${summary}`).toBe(1);
      expect(results.filter(refused).length, `round ${round}\n${summary}`).toBe(AT_ONCE - 1);
      expect(started[0]!.stdout.split("\n").filter((l) => l.startsWith(`r${round}-`)).length, summary).toBe(1);
    }
  }, SLOW ? 600_000 : 180_000);

  it("--ephemeral starts a separate instance while the persistent one runs", async () => {
    const home = makeCliHome();
    const child = spawnCastle(home, ["run", def, "--plain", "--", "/bin/sh", "-c", "echo up; sleep 2"]);
    const persistent = collect(child, 120_000);
    await new Promise<void>((resolve) => child.stdout!.on("data", (d: Buffer) => d.toString().includes("up") && resolve()));
    const second = await runCastle(home, ["run", def, "--plain", "--", "/bin/true"]);
    expect(refused(second), describeRun(second)).toBe(true);
    const ephemeral = await runCastle(home, ["run", def, "--plain", "--ephemeral", "--", "/bin/echo", "separate"]);
    expect(ephemeral.code, describeRun(ephemeral)).toBe(0);
    expect(ephemeral.stdout).toBe("separate\n");
    expect((await persistent).code).toBe(0);
    // Once it has exited, the system is free again.
    const next = await runCastle(home, ["run", def, "--plain", "--", "/bin/echo", "free"]);
    expect(next.code, describeRun(next)).toBe(0);
  });

  it("a run killed with -9 does not keep its system busy", async () => {
    const home = makeCliHome();
    for (let i = 0; i < 3; i++) {
      const child = spawnCastle(home, ["run", def, "--plain", "--", "/bin/sh", "-c", "echo up; sleep 30"]);
      const done = collect(child, 120_000);
      await new Promise<void>((resolve) => child.stdout!.on("data", (d: Buffer) => d.toString().includes("up") && resolve()));
      child.kill("SIGKILL");
      await done;
      // The sandbox dies with castle (its sync fd closes): give it a moment to be gone.
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    const results = await Promise.all([0, 1].map(() => collect(spawnCastle(home, ["run", def, "--plain", "--", "/bin/sh", "-c", "sleep 1"]), 60_000)));
    expect(results.filter((r) => r.code === 0).length, results.map(describeRun).join("\n")).toBe(1);
    expect(results.filter(refused).length, results.map(describeRun).join("\n")).toBe(1);
  });
});
