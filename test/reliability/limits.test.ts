// Reliability: limits that hold, through the real `castle` binary. `castle run --pids` holds
// when Castle runs as root (cgroup v1 here, where RLIMIT_NPROC never bound host root) and warns
// in one line where no cgroup is Castle's to use. Builds have default limits (processes, /tmp,
// memory where a cgroup holds it), overridable per layer and per run, and a runaway build fails
// its layer with a message naming the limit it hit; limits never change a layer's key.

import { readdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { busyboxMissing, makeBusyboxRootfs } from "../fixtures/rootfs";
import { cliMissing, describeRun, makeCliHome, runCastle, type CliHome } from "./helpers/cli";
import { useTempDirs, writeDefinition } from "./helpers/definitions";

const skip = cliMissing() ?? busyboxMissing();
if (skip) console.warn(`skipping limits tests: ${skip}`);
const ROOT = process.getuid?.() === 0;

const temp = useTempDirs("castle-rel-limits");
let rootfs: string;
beforeAll(() => {
  if (!skip) rootfs = makeBusyboxRootfs(temp("rootfs"));
});

/** Forks sleepers until the shell cannot (busybox sh then exits 2), printing each count. */
const FORK_LOOP = "i=0; while [ $i -lt 400 ]; do sleep 60 & i=$((i+1)); echo $i; done";

/** A system "limits" whose layer `job` runs `script` with `limits` (a JS expression). */
function definition(script: string, limits = "{}"): string {
  return writeDefinition(temp("def"), {
    "castle.ts": `import { layer, source, system } from "castle";
const base = layer.import({ name: "base", from: source.local(${JSON.stringify(rootfs)}) });
const job = layer({ name: "job", runDeps: [base], limits: ${limits}, script: ${JSON.stringify(script)} });
export default system({ name: "limits", layers: [job], entrypoint: ["/bin/sh"] });
`,
  });
}

/** The staging dirs a build left in the store (there must be none once castle has exited). */
function leftovers(home: CliHome): string[] {
  try {
    return readdirSync(join(home.cache, "tmp"));
  } catch {
    return [];
  }
}

describe.skipIf(skip)("limits that hold", () => {
  it.skipIf(!ROOT)("castle run --pids holds when Castle runs as root, in a cgroup of its own, with no warning", async () => {
    const home = makeCliHome();
    const def = definition("echo ok > /ok");
    const r = await runCastle(home, ["run", def, "--plain", "--pids", "64", "--", "/bin/sh", "-c", FORK_LOOP], { asCaller: true });
    expect(r.code, describeRun(r)).toBe(2); // busybox sh gives up when a fork fails
    expect(Number(r.stdout.trim().split("\n").pop())).toBeLessThan(64);
    expect(r.stderr).not.toMatch(/warning/);
  });

  it("builds have default limits: 2048 processes and a 1G /tmp", async () => {
    const home = makeCliHome();
    const def = definition("ulimit -u > /limits; df -k /tmp | tail -1 | tr -s ' ' | cut -d' ' -f2 >> /limits");
    const built = await runCastle(home, ["run", def, "--plain", "--", "cat", "/limits"]);
    expect(built.code, describeRun(built)).toBe(0);
    // As uid 65534 no cgroup is Castle's here: RLIMIT_NPROC stands in for the pids limit.
    expect(built.stdout).toBe(`2048\n${1024 * 1024}\n`);
  });

  it("a runaway build fails its layer naming the process limit, set on the layer", async () => {
    const home = makeCliHome();
    const r = await runCastle(home, ["build", definition(FORK_LOOP, "{ pids: 48 }"), "--plain"]);
    expect(r.code, describeRun(r)).toBe(1);
    expect(r.stderr).toMatch(
      /^castle: layer job: the build script exited with status 2: it reached its limit of processes \(48\): raise it with `limits: \{ pids \}` on the layer or --build-pids$/m,
    );
    expect(leftovers(home)).toEqual([]);
  });

  it("a build filling /tmp fails naming the /tmp limit; the run's --build-tmp overrides the layer's", async () => {
    const home = makeCliHome();
    const def = definition("dd if=/dev/zero of=/tmp/big bs=1M count=64", '{ tmp: "1G" }');
    const r = await runCastle(home, ["build", def, "--plain", "--build-tmp", "16M"]);
    expect(r.code, describeRun(r)).toBe(1);
    expect(r.stderr).toMatch(/^castle: layer job: the build script exited with status 1: its \/tmp was full \(16M\): raise it with `limits: \{ tmp \}` on the layer or --build-tmp$/m);
    // The layer's own 1G is enough once the run does not lower it.
    expect((await runCastle(home, ["build", def, "--plain"])).code).toBe(0);
  });

  it.skipIf(!ROOT)("as root, a build over its memory limit is killed in its cgroup and the message names the limit", async () => {
    const home = makeCliHome();
    const hungry = "awk 'BEGIN { s = sprintf(\"%268435456s\", \"\"); print length(s) }'";
    const r = await runCastle(home, ["build", definition(hungry, '{ memory: "64M" }'), "--plain"], { asCaller: true });
    expect(r.code, describeRun(r)).toBe(1);
    expect(r.stderr).toMatch(
      /^castle: layer job: the build script (killed by SIGKILL|exited with status 137): it went over its memory limit \(64M\): raise it with `limits: \{ memory \}` on the layer or --build-memory$/m,
    );
  });

  it("limits are not part of a layer's key: changing them rebuilds nothing", async () => {
    const home = makeCliHome();
    const first = await runCastle(home, ["build", definition("echo same > /out", "{ pids: 100 }"), "--plain"]);
    expect(first.code, describeRun(first)).toBe(0);
    const second = await runCastle(home, ["build", definition("echo same > /out", '{ pids: "none", tmp: "2G" }'), "--plain", "--build-pids", "64"]);
    expect(second.code, describeRun(second)).toBe(0);
    expect(second.stdout).toBe(first.stdout); // the same system digest
    expect(second.stderr).not.toMatch(/^building job/m);
  });

  it("bad limits are clear errors: on the layer (exit 3) and on the command line (exit 2)", async () => {
    const home = makeCliHome();
    const bad = await runCastle(home, ["build", definition("true", '{ pids: -1 }'), "--plain"]);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/limits\.pids must be a positive integer or "none"/);
    const flag = await runCastle(home, ["build", definition("true"), "--build-memory", "lots"]);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/--build-memory takes a size like 512M or 2G, got "lots"/);
  });
});
