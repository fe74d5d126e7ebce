// Reliability: the user's own files. A system's persistent upper dir (what `castle run` keeps
// across runs) must come through faults untouched: a run whose build fails never starts and
// never writes there; a `castle run` killed with -9 leaves what the command had written, no
// instance that claims to be running, and a next run that works; an --ephemeral run killed
// never mixes its throwaway state into the persistent one, and a later run clears it.

import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { busyboxMissing, makeBusyboxRootfs } from "../fixtures/rootfs";
import { cliMissing, collect, describeRun, makeCliHome, runCastle, spawnCastle } from "./helpers/cli";
import { useTempDirs, writeDefinition } from "./helpers/definitions";
import { checkStore } from "./helpers/store-check";

const skip = cliMissing() ?? busyboxMissing();
if (skip) console.warn(`skipping run-state tests: ${skip}`);

const temp = useTempDirs("castle-rel-run");
let rootfs: string;
beforeAll(() => {
  if (!skip) rootfs = makeBusyboxRootfs(temp("rootfs"));
});

/** A system named "state"; BREAK=1 makes one of its layers fail to build. */
function definition(): string {
  return writeDefinition(temp("def"), {
    "castle.ts": `import { layer, source, system } from "castle";
const base = layer.import({ name: "base", from: source.local(${JSON.stringify(rootfs)}) });
const etc = layer({ name: "etc", runDeps: [base], script: process.env.BREAK === "1" ? "echo broken >&2; exit 3" : "mkdir -p /etc && echo v1 > /etc/version" });
export default system({ name: "state", layers: [etc], entrypoint: ["/bin/sh"] });
`,
  });
}

/** Every file under the system's upper dir, with its content. */
function upperFiles(home: ReturnType<typeof makeCliHome>): Record<string, string> {
  const upper = join(home.data, "systems", "state", "upper");
  const out: Record<string, string> = {};
  const visit = (dir: string, rel: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) visit(join(dir, entry.name), path);
      else out[path] = entry.isFile() ? readFileSync(join(dir, entry.name), "utf8") : "(special)";
    }
  };
  if (existsSync(upper)) visit(upper, "");
  return out;
}

describe.skipIf(skip)("the user's upper dir through faults", () => {
  it("a run whose build fails exits 1 and leaves the persistent state untouched", async () => {
    const home = makeCliHome();
    const def = definition();
    const first = await runCastle(home, ["run", def, "--plain", "--", "/bin/sh", "-c", "mkdir -p /root && echo mine > /root/notes.txt"]);
    expect(first.code, describeRun(first)).toBe(0);
    const before = upperFiles(home);
    expect(before["root/notes.txt"]).toBe("mine\n");
    const broken = await runCastle(home, ["run", def, "--plain", "--", "/bin/sh", "-c", "echo overwritten > /root/notes.txt"], { env: { BREAK: "1" } });
    expect(broken.code, describeRun(broken)).toBe(1);
    expect(broken.stderr).toMatch(/^castle: layer etc: the build script exited with status 3/m);
    expect(upperFiles(home)).toEqual(before);
    const again = await runCastle(home, ["run", def, "--plain", "--", "/bin/cat", "/root/notes.txt", "/etc/version"]);
    expect(again.code, describeRun(again)).toBe(0);
    expect(again.stdout).toBe("mine\nv1\n");
  });

  it("a `castle run` killed with -9 keeps what the command wrote, and the next run starts", async () => {
    const home = makeCliHome();
    const def = definition();
    const child = spawnCastle(home, ["run", def, "--plain", "--", "/bin/sh", "-c", "mkdir -p /root && echo before-kill > /root/kept; echo ready; sleep 30"]);
    const done = collect(child, 60_000);
    await new Promise<void>((resolve) => child.stdout!.on("data", (d: Buffer) => d.toString().includes("ready") && resolve()));
    child.kill("SIGKILL");
    const killed = await done;
    expect(killed.signal).toBe("SIGKILL");
    // The sandbox dies with castle (its sync fd closes): give it a moment to be gone.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const ps = await runCastle(home, ["ps"]);
    expect(ps.code, describeRun(ps)).toBe(0);
    expect(ps.stdout).not.toMatch(/state/);
    const next = await runCastle(home, ["run", def, "--plain", "--", "/bin/cat", "/root/kept"]);
    expect(next.code, describeRun(next)).toBe(0);
    expect(next.stdout).toBe("before-kill\n");
    expect(checkStore(home.cache).problems).toEqual([]);
  });

  it("an --ephemeral run killed with -9 never touches the persistent state", async () => {
    const home = makeCliHome();
    const def = definition();
    const first = await runCastle(home, ["run", def, "--plain", "--", "/bin/sh", "-c", "mkdir -p /root && echo persistent > /root/p"]);
    expect(first.code, describeRun(first)).toBe(0);
    const before = upperFiles(home);
    const child = spawnCastle(home, ["run", def, "--plain", "--ephemeral", "--", "/bin/sh", "-c", "echo ephemeral > /root/p; echo ready; sleep 30"]);
    const done = collect(child, 60_000);
    await new Promise<void>((resolve) => child.stdout!.on("data", (d: Buffer) => d.toString().includes("ready") && resolve()));
    child.kill("SIGKILL");
    await done;
    expect(upperFiles(home)).toEqual(before);
    const next = await runCastle(home, ["run", def, "--plain", "--", "/bin/cat", "/root/p"]);
    expect(next.stdout).toBe("persistent\n");
    // The killed run's throwaway state was cleared by the next ephemeral run (it used to stay forever).
    const after = await runCastle(home, ["run", def, "--plain", "--ephemeral", "--", "/bin/true"]);
    expect(after.code, describeRun(after)).toBe(0);
    expect(readdirSync(join(home.data, "tmp"))).toEqual([]);
  });
});
