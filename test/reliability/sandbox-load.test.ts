// Reliability: many short-lived sandboxes at once, then a check that nothing leaked. About 1 000
// instances (10 000 with CASTLE_SLOW_TESTS=1) at concurrency 8, split between this process and
// uid 65534, through every ending a caller meets: a clean exit, SIGKILL mid-run, an abort, a
// command entered into a running sandbox, and a setup failure. Afterwards no process carrying the
// run's marker may be left (helper, init, command), the host's mounts must be unchanged, none of
// the helper's base dirs may show up on the host, and this process must hold no more fds than
// before. bench/sandbox-load.ts measures the same thing for speed.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enter, run, spawn, type SandboxProcess, type SandboxSpec } from "../../packages/sandbox/src/index";
import { makeRootfs } from "../../packages/sandbox/test/fixtures";
import {
  CALLERS, LEAK_MARK, busyboxMissing, callerMissing, cleanup, fdTargets, hostChanges, markedProcessesAfter, openFds, snapshot,
  tempDir, type HostSnapshot,
} from "./helpers/sandbox-fixture";

const SLOW = process.env.CASTLE_SLOW_TESTS === "1";
const TOTAL = SLOW ? 10_000 : 1_000;
const CONCURRENCY = 8;
const ENV = { PATH: "/bin", MARK: LEAK_MARK };

type Ending = "exit" | "kill" | "abort" | "enter" | "setup-error";
const ENDINGS: [Ending, number][] = [["exit", 80], ["kill", 8], ["abort", 4], ["enter", 4], ["setup-error", 4]];

function endingOf(i: number): Ending {
  let slot = (i * 37) % 100; // spread the rare endings through the run
  for (const [ending, share] of ENDINGS) {
    if (slot < share) return ending;
    slot -= share;
  }
  return "exit";
}

describe.skipIf(busyboxMissing())("sandbox load", () => {
  let rootfs: string;
  let before: HostSnapshot;
  const boxes: SandboxProcess[] = [];

  beforeAll(() => {
    rootfs = makeRootfs(tempDir("castle-rel-load-"));
    before = snapshot();
  });

  afterAll(async () => {
    for (const box of boxes) box.kill("SIGKILL");
    await Promise.all(boxes.map((box) => box.wait().catch(() => {})));
    cleanup();
  });

  it(`starts and ends ${TOTAL} sandboxes, ${CONCURRENCY} at a time, leaving nothing behind`, async () => {
    const callers = CALLERS.filter((caller) => !callerMissing(caller));
    const spec: SandboxSpec = { root: { lowers: [rootfs] }, argv: ["/bin/true"], env: ENV };
    const targets = await Promise.all(
      callers.map(async (caller) => {
        const box = spawn({ root: { lowers: [rootfs] }, argv: ["/bin/sleep", "1000"], env: ENV }, { stdio: "ignore", ...(caller.asUser ? { asUser: caller.asUser } : {}) });
        boxes.push(box);
        return (await box.started).initPid;
      }),
    );
    const fdsBefore = openFds();
    const counts = new Map<string, number>();
    const problems: string[] = [];

    const one = async (i: number) => {
      const which = i % callers.length;
      const caller = callers[which];
      const opts = caller?.asUser ? { asUser: caller.asUser } : {};
      const ending = endingOf(i);
      let outcome: string;
      if (ending === "exit") {
        const r = await run(spec, opts);
        outcome = `exit ${r.code}`;
      } else if (ending === "kill" || ending === "abort") {
        const controller = new AbortController();
        const child = spawn({ ...spec, argv: ["/bin/sleep", "30"] }, { ...opts, stdio: "ignore", signal: controller.signal });
        await child.started;
        if (ending === "kill") child.kill("SIGKILL");
        else controller.abort();
        outcome = await child.wait().then((e) => `exit ${e.code}`, (e: { code?: string }) => String(e.code));
      } else if (ending === "enter") {
        const child = enter({ initPid: targets[which] as number }, { argv: ["/bin/true"], env: ENV }, { ...opts, stdio: "ignore" });
        outcome = await child.wait().then((e) => `exit ${e.code}`, (e: { code?: string }) => String(e.code));
      } else {
        outcome = await run({ ...spec, root: { lowers: [`${rootfs}-missing`] } }, opts).then((r) => `exit ${r.code}`, (e: { code?: string }) => String(e.code));
      }
      const key = `${ending}: ${outcome}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    };

    let next = 0;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < TOTAL) {
          const i = next++;
          await one(i).catch((error: unknown) => problems.push(`instance ${i}: ${String(error)}`));
        }
      }),
    );
    const seconds = (performance.now() - start) / 1000;
    console.log(`sandbox-load: ${TOTAL} instances in ${seconds.toFixed(1)} s (${(TOTAL / seconds).toFixed(0)}/s): ${JSON.stringify(Object.fromEntries(counts))}`);

    expect(problems.slice(0, 5)).toEqual([]);
    // Every ending ended the one way it should, as often as it was asked for.
    const expected: Record<Ending, string> = {
      exit: "exit 0", kill: "exit 137", abort: "CASTLE_CANCELLED", enter: "exit 0", "setup-error": "CASTLE_SANDBOX_SETUP",
    };
    const asked = new Map<Ending, number>();
    for (let i = 0; i < TOTAL; i++) asked.set(endingOf(i), (asked.get(endingOf(i)) ?? 0) + 1);
    expect(Object.fromEntries(counts)).toEqual(Object.fromEntries([...asked].map(([ending, n]) => [`${ending}: ${expected[ending]}`, n])));

    // Nothing left: the two long-running sandboxes go first, then every marked process must be gone.
    for (const box of boxes.splice(0)) {
      box.kill("SIGKILL");
      await box.wait().catch(() => {});
    }
    expect(await markedProcessesAfter(5000)).toEqual([]);
    const changes = hostChanges(before);
    expect(changes.mounts).toEqual([]);
    expect(changes.tmp).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 200)); // closed pipes release their handles
    const fdsAfter = openFds();
    expect(fdsAfter, `fds now:\n${fdTargets().join("\n")}`).toBeLessThanOrEqual(fdsBefore);
  }, SLOW ? 900_000 : 120_000);
});
