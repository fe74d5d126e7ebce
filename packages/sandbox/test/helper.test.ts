// The helper binary on its own: its command line, malformed specs (exit 125 with one clear
// line and a JSON error), fds it must not pass on, --probe, and finding it (helperPath).

import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { helperPath, serializeSpec } from "../src/index";
import { busyboxMissing, cleanup, makeRootfs, runHelper, tempDir } from "./fixtures";

const HEADER = "castle-sandbox-spec/1\0";
const skipAll = busyboxMissing();

describe.skipIf(skipAll)("castle-sandbox", () => {
  let rootfs: string;
  beforeAll(() => {
    rootfs = makeRootfs(tempDir());
  });
  afterAll(cleanup);

  it("answers --version and --help", () => {
    expect(execFileSync(helperPath(), ["--version"], { encoding: "utf8" })).toMatch(/^castle-sandbox \d+\.\d+\.\d+ \(spec castle-sandbox-spec\/1\)/);
    expect(execFileSync(helperPath(), ["--help"], { encoding: "utf8" })).toContain("--spec-fd");
  });

  it.each([
    ["an empty spec", "", /expected the header "castle-sandbox-spec\/1"/],
    ["another version", "castle-sandbox-spec/9\0", /expected the header/],
    ["an unknown op", `${HEADER}frobnicate\0`, /unknown op "frobnicate"/],
    ["a truncated op", `${HEADER}argv\x003\0/bin/sh\0`, /op "argv" is cut short/],
    ["a missing NUL", `${HEADER}argv\x001\0/bin/sh`, /not NUL-terminated/],
    ["a bad count", `${HEADER}argv\0many\0`, /count "many" is not a number/],
    ["no lower", `${HEADER}argv\x001\0/bin/true\0`, /the root needs at least one lower/],
    ["no argv", `${HEADER}lower\0/\0`, /no argv/],
    ["a relative lower", `${HEADER}argv\x001\0/bin/true\0lower\0rootfs\0`, /lower "rootfs" is not an absolute path/],
    ["501 lowers", `${HEADER}argv\x001\0/bin/true\0${"lower\0/l\0".repeat(501)}`, /more than 500 root lowers/],
    ["a target with ..", `${HEADER}argv\x001\0/bin/true\0lower\0/\0tmpfs\0/a/../b\x000\x00755\0`, /has a "\." or "\.\." component/],
    ["upper without work", `${HEADER}argv\x001\0/bin/true\0lower\0/\0upper\0/u\0\0`, /upper needs both/],
    ["a bad rlimit", `${HEADER}argv\x001\0/bin/true\0lower\0/\0rlimit\0nofile\x0010\x005\0`, /soft limit above hard limit/],
    ["an unknown capability", `${HEADER}argv\x001\0/bin/true\0lower\0/\0keep-caps\x001\0CAP_WHATEVER\0`, /unknown capability/],
  ])("rejects %s with exit 125 and a clear message", async (_name, spec, message) => {
    const r = await runHelper(spec);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/^castle-sandbox: bad spec: /);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.status).toEqual([{ event: "error", code: 125, message: expect.stringMatching(message) }]);
  });

  it("rejects a spec larger than 1 MiB", async () => {
    const r = await runHelper(`${HEADER}${"env\0K=V\0".repeat(150_000)}`);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/spec is larger than 1048576 bytes/);
  });

  it("does not pass inherited fds (or its protocol fds) to the command", async () => {
    const spec = serializeSpec({ root: { lowers: [rootfs] }, argv: ["/bin/sh", "-c", "ls /proc/$$/fd; true"] });
    const r = await runHelper(spec, { extraFds: 3 });
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split("\n").sort()).toEqual(["0", "1", "2"]);
    expect(r.status.map((s) => s.event)).toEqual(["started", "exit"]);
  });

  it("writes started before exit on the status fd", async () => {
    const r = await runHelper(serializeSpec({ root: { lowers: [rootfs] }, argv: ["/bin/sh", "-c", "exit 3"] }));
    expect(r.code).toBe(3);
    expect(r.status).toEqual([
      { event: "started", initPid: expect.any(Number), overlay: "kernel" },
      { event: "exit", code: 3 },
    ]);
  });

  it("prints what the machine supports with --probe", () => {
    const support = JSON.parse(execFileSync(helperPath(), ["--probe"], { encoding: "utf8" })) as Record<string, { ok: boolean; reason: string | null }>;
    expect(Object.keys(support).sort()).toEqual(["fuseOverlay", "kernelOverlay", "subordinateIds", "userNamespaces"]);
    for (const feature of Object.values(support)) expect(feature.ok || typeof feature.reason === "string").toBe(true);
  });

  it("is found through CASTLE_SANDBOX_HELPER, and explains when it is missing", () => {
    // The one beside the sources, whatever the environment says (the suite may stage a copy).
    const real = helperPath({});
    expect(helperPath({ CASTLE_SANDBOX_HELPER: real })).toBe(real);
    expect(helperPath({ CASTLE_SANDBOX_HELPER: "/nonexistent/castle-sandbox" })).toBe(real); // falls through
    expect(real.endsWith("packages/sandbox/helper/castle-sandbox")).toBe(true);
  });
});
