// Build progress through the bundled binary as uid 65534: one plain line per event and no escape
// codes when stderr is not a terminal, with --plain, or with CI set (even on a pty); the live view
// on a real pseudo-terminal; -v shows build logs; and a failure names the layer, shows the last
// 30 lines of its log and the path of the full log, and exits 1 — in both views. An edited
// rebuild's ETA, drawn from the last run's times, stays close to what is really left.

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliWorld, cliMissing, definition, visible, type CliHome } from "./helpers/cli-harness";
import { scriptMissing, Terminal } from "./helpers/cli-pty";

const skip = cliMissing();
if (skip) console.warn(`skipping cli-progress: ${skip}`);
const noPty = scriptMissing();
if (!skip && noPty) console.warn(`skipping the pseudo-terminal progress tests: ${noPty}`);

describe.skipIf(skip)("build progress", () => {
  let world: CliWorld;
  let def: string;
  let failing: string;
  let slowStep = 0;

  /** A system whose layers take a moment, changed each time so that it really builds. */
  const fresh = () => {
    slowStep++;
    writeFileSync(
      join(def, "castle.ts"),
      definition(
        world.rootfs,
        `const slow = layer({ name: "slow", runDeps: [base], script: "for i in 1 2 3 4 5; do echo step-$i-of-${slowStep}; sleep 0.15; done; mkdir -p /opt && echo ${slowStep} > /opt/slow" });
const quick = layer({ name: "quick", runDeps: [base], script: "echo quick-${slowStep} > /quick" });
export default system({ name: "progress", layers: [slow, quick] });`,
      ),
    );
  };

  beforeAll(() => {
    world = CliWorld.create();
    def = world.dir("def");
    failing = world.dir("failing", {
      "castle.ts": definition(
        world.rootfs,
        `const fine = layer({ name: "fine", runDeps: [base], script: "echo fine > /fine" });
const broken = layer({ name: "broken", runDeps: [fine], script: "for i in $(seq 1 50); do echo log-line-$i; done; echo 'oops: something broke' >&2; exit 3" });
export default system({ name: "failing", layers: [broken] });`,
      ),
    });
  });
  afterAll(() => world?.dispose("cli-progress"));

  it("prints one plain line per event, without escape codes, when stderr is not a terminal", async () => {
    const home = world.home("plain");
    fresh();
    const r = await home.run(["build", def]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr + r.stdout).not.toContain("\x1b");
    const lines = r.stderr.trim().split("\n");
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\[[ \d]\/3\] imported base in \d+\.\ds$/),
        "building slow (new)",
        "building quick (new)",
        expect.stringMatching(/^\[[ \d]\/3\] built slow in \d+\.\ds$/),
        expect.stringMatching(/^done: 3 layers \(3 built, 0 pulled, 0 cached\) in \d+\.\ds$/),
      ]),
    );
    expect(lines.at(-1)).toMatch(/^done: /);
    expect(r.stderr).not.toMatch(/step-1/); // logs only with -v
  });

  it("-v adds the build log, one prefixed line each", async () => {
    const home = world.home("verbose");
    fresh();
    const r = await home.run(["build", def, "-v"]);
    expect(r.stderr).toMatch(new RegExp(`^slow \\| step-1-of-${slowStep}$`, "m"));
    expect(r.stderr).toMatch(new RegExp(`^slow \\| step-5-of-${slowStep}$`, "m"));
    expect(r.stderr).not.toContain("\x1b");
  });

  it("shows the failing layer, the last 30 lines of its log and the full log's path; exits 1", async () => {
    const home = world.home("failure");
    const r = await home.run(["build", failing]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).not.toContain("\x1b");
    expect(r.stderr).toMatch(/^\[\d\/3\] failed broken: layer broken: the build script exited with status 3$/m);
    expect(r.stderr).toMatch(/^error: broken failed: /m);
    expect(r.stderr).toMatch(/^last 30 lines of the log of broken:$/m);
    const tail = [...r.stderr.matchAll(/^ {2}\| (.*)$/gm)].map((m) => m[1]);
    expect(tail).toHaveLength(30);
    // 50 lines, the script's stderr, and the sandbox's last word on how the script ended.
    expect(tail.slice(0, 2)).toEqual(["log-line-23", "log-line-24"]);
    expect(tail.slice(-3)).toEqual(["log-line-50", "oops: something broke", "castle: the build script exited with status 3"]);
    expect(r.stderr).not.toMatch(/log-line-22$/m);
    const log = /^full log: (\S+)$/m.exec(r.stderr)?.[1];
    expect(log).toBeDefined();
    expect(existsSync(log!)).toBe(true);
    expect(readFileSync(log!, "utf8")).toMatch(/^log-line-1$/m);
    expect(r.stderr).toMatch(/^failed: 3 layers \(2 built, 0 pulled, 0 cached, 1 failed\)/m);
    expect(r.stderr).toMatch(new RegExp(`^hint: the full log is ${log}$`, "m"));
    // `castle run` does not run a system that failed to build.
    const run = await home.run(["run", failing, "--", "echo", "should-not-run"]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("");
  });

  describe.skipIf(noPty)("on a real terminal", () => {
    let home: CliHome;
    beforeAll(() => {
      home = world.home("tty");
    });

    it("draws the live view, then the outcome", async () => {
      fresh();
      const term = new Terminal(home, ["build", def]);
      try {
        expect(await term.status()).toBe(0);
      } finally {
        term.kill();
      }
      expect(term.output).toContain("\x1b[");
      expect(term.output).toContain("\x1b[?25l"); // the cursor is hidden while drawing...
      expect(term.output).toContain("\x1b[?25h"); // ...and shown again
      expect(term.text).toMatch(/✔ built slow in \d+\.\ds/);
      expect(term.text).toMatch(/done: 3 layers \(3 built, 0 pulled, 0 cached\) in \d+\.\ds/);
      expect(term.text).toMatch(/^[0-9a-f]{64}$/m);
    });

    it("prints plain lines with --plain or CI set, even on a terminal", async () => {
      for (const [args, env] of [
        [["--plain"], {}],
        [[], { CI: "true" }],
      ] as [string[], Record<string, string>][]) {
        fresh();
        const term = new Terminal(home, ["build", def, ...args], { env });
        try {
          expect(await term.status()).toBe(0);
        } finally {
          term.kill();
        }
        expect(term.output, args.join(" ") || "CI=true").not.toContain("\x1b");
        expect(term.text).toMatch(/^building slow \(script changed\)$/m);
      }
    });

    it("Ctrl-C says the build was interrupted (not that a layer failed) and exits 130", async () => {
      const slow = world.dir(`interrupt-${Date.now()}`, {
        "castle.ts": definition(world.rootfs, `const slow = layer({ name: "slow", runDeps: [base], script: "for i in $(seq 1 100); do echo step-$i; sleep 0.2; done" });
export default system({ name: "interrupt", layers: [slow] });`),
      });
      // bash runs castle on the pty: it goes on after a child that handled the Ctrl-C itself
      // (dash, /bin/sh, would die of the SIGINT too, before printing the exit status).
      const term = new Terminal(world.home("tty-interrupt"), ["build", slow], { env: { SHELL: "/bin/bash" } });
      try {
        await term.expect(/step-3/, 0, 30_000);
        term.type("\x03");
        expect(await term.status()).toBe(130);
      } finally {
        term.kill();
      }
      expect(term.text).toMatch(/⚠ interrupted \(Ctrl-C\): stopping what is running; what is done is kept/);
      expect(term.text).toMatch(/- stopped slow: the build was interrupted/);
      expect(term.text).toMatch(/interrupted: 2 layers \(1 built, 0 pulled, 0 cached, 1 stopped\)/);
      expect(term.text).toMatch(/^castle: interrupted \(Ctrl-C\): nothing half-built was kept; what was done is cached$/m);
      expect(term.text).not.toMatch(/error: slow failed/);
    });

    it("an edited rebuild's ETA comes from the last run's times and holds to the end", async () => {
      // Two layers in a row, about 3 s each; the second build edits both scripts (new keys, no
      // stored record), so its expected times can only come from the history of the first run.
      const dir = world.dir(`eta-${Date.now()}`);
      const write = (version: number) =>
        writeFileSync(
          join(dir, "castle.ts"),
          definition(
            world.rootfs,
            `const first = layer({ name: "first", runDeps: [base], script: "for i in 1 2 3 4 5 6; do echo first-$i-v${version}; sleep 0.5; done; echo > /first" });
const second = layer({ name: "second", runDeps: [first], script: "for i in 1 2 3 4 5 6; do echo second-$i-v${version}; sleep 0.5; done; echo > /second" });
export default system({ name: "eta", layers: [second] });`,
          ),
        );
      const etaHome = world.home("tty-eta");
      write(1);
      const before = await etaHome.run(["build", dir, "--plain"]);
      expect(before.code, before.stderr).toBe(0);
      write(2);
      const term = new Terminal(etaHome, ["build", dir]);
      try {
        expect(await term.status(60_000)).toBe(0);
      } finally {
        term.kill();
      }
      const end = term.chunks.find((chunk) => visible(chunk.text).includes("done:"))?.at;
      expect(end, term.text).toBeDefined();
      const samples = term.chunks.flatMap((chunk) => {
        const match = /ETA (≥ )?(?:(\d+)m)?(\d+\.?\d*)s/.exec(visible(chunk.text));
        if (!match) return [];
        const etaMs = (Number(match[2] ?? 0) * 60 + Number(match[3])) * 1000;
        return [{ left: end! - chunk.at, etaMs }];
      });
      expect(term.text).not.toMatch(/ETA unknown/);
      const first = samples[0]?.left ?? 0;
      const judged = samples.filter((sample) => sample.left < first - 1000 && sample.left > 1000);
      const errors = judged.map((sample) => Math.abs(sample.etaMs - sample.left) / sample.left);
      console.log(
        `[eta] ${samples.length} ETAs over ${first} ms; judged ${judged.length}; ` +
          `worst error ${Math.round(100 * Math.max(...errors))}% (` +
          judged.filter((_, i) => i % Math.ceil(judged.length / 6) === 0).map((s) => `${(s.etaMs / 1000).toFixed(1)}/${(s.left / 1000).toFixed(1)}s`).join(" ") +
          ")",
      );
      expect(judged.length).toBeGreaterThan(3);
      // Loose (a loaded machine stretches the builds' overhead, not their sleeps): within 40 % of
      // what was really left, or 1.5 s.
      for (const sample of judged) expect(Math.abs(sample.etaMs - sample.left)).toBeLessThan(Math.max(1500, 0.4 * sample.left));
    });

    it("ends a failed build with the failure block", async () => {
      const term = new Terminal(world.home("tty-failure"), ["build", failing]);
      try {
        expect(await term.status()).toBe(1);
      } finally {
        term.kill();
      }
      expect(term.output).toContain("\x1b[");
      expect(term.text).toMatch(/✗ failed broken/);
      expect(term.text).toMatch(/\| oops: something broke/);
      expect(term.text).toMatch(/full log: \S+/); // cut to the terminal's width by the live view...
      expect(term.text).toMatch(/castle: layer broken: the build script exited with status 3\nhint: the full log is \S+\.log/); // ...whole here
    });
  });
});
