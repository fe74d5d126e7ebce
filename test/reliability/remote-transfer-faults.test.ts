// Reliability: remote caches that misbehave in ways a floor, a deadline and a guard must catch,
// through the bundled CLI as uid 65534 against real servers on loopback — a static web server
// that trickles (64 bytes at a time, never silent long enough for an idle timeout), a registry
// that is down, that refuses the credentials, or whose uploads are cut off — and Castle cancelled
// in the middle of a pull. Each time: exit 0 and a local build with one warning per remote (or
// exit 5 under --strict-export, with a hint that says why), a cancellation reported as one, and
// nothing partial in the store or the registry.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openRemote } from "@castle/cache";
import { dockerConfig, type Registry, registryMissing, startRegistry } from "../../packages/cache/test/helpers/registry";
import { type StaticServer, startStaticServer } from "../../packages/cache/test/helpers/static-server";
import { closedPort } from "../../packages/cache/test/helpers/tcp-proxy";
import { busyboxMissing, makeBusyboxRootfs } from "../fixtures/rootfs";
import { builtLayers, cliMissing, collect, describeRun, giveToRunner, makeCliHome, runCastle, spawnCastle, type CliHome } from "./helpers/cli";
import { useTempDirs, writeDefinition } from "./helpers/definitions";
import { startFaultProxy } from "./helpers/fault-proxy";
import { random } from "./helpers/random";
import { checkStore } from "./helpers/store-check";

const skip = busyboxMissing() ?? cliMissing();
if (skip) console.warn(`skipping remote transfer faults: ${skip}`);
const registrySkip = skip ?? registryMissing("htpasswd");
if (registrySkip && !skip) console.warn(`skipping the registry faults: ${registrySkip}`);

const temp = useTempDirs("castle-rel-transfer");
let def: string;
let exported: string;
let web: StaticServer;
let ciDigest: string;

beforeAll(async () => {
  if (skip) return;
  const rootfs = makeBusyboxRootfs(temp("rootfs"));
  // 3 MiB that does not compress: a blob that takes a long time to trickle.
  const data = temp("data");
  mkdirSync(join(data, "opt"), { mode: 0o755 });
  const rng = random(7);
  const bytes = Buffer.alloc(3 << 20);
  for (let i = 0; i < bytes.length; i += 4) bytes.writeUInt32LE(Math.floor(rng.next() * 2 ** 32), i);
  writeFileSync(join(data, "opt/data.bin"), bytes, { mode: 0o644 });
  def = writeDefinition(temp("def"), {
    "castle.ts": `import { layer, source, system } from "castle";
const base = layer.import({ name: "base", from: source.local(${JSON.stringify(rootfs)}) });
const data = layer.import({ name: "data", from: source.local(${JSON.stringify(data)}) });
const app = layer({ name: "app", runDeps: [base, data], script: "echo app > /app" });
const tool = layer({ name: "tool", runDeps: [base], script: "echo tool > /tool" });
export default system({ name: "transfers", layers: [app, tool] });
`,
  });
  exported = temp("exported");
  giveToRunner(exported);
  const ci = makeCliHome();
  const built = await runCastle(ci, ["build", def, "--plain", "--export-cache", `file://${exported}`]);
  expect(built.code, describeRun(built)).toBe(0);
  ciDigest = built.stdout;
  web = await startStaticServer(exported);
});
afterAll(async () => {
  await web?.close();
});

function warnings(stderr: string): string[] {
  return stderr.split("\n").filter((line) => line.startsWith("warning: "));
}

describe.skipIf(skip)("a remote that trickles", () => {
  it("is abandoned within its window: the build succeeds locally, with one warning for it", async () => {
    web.mode = { kind: "trickle", bytes: 64, everyMs: 200, match: /\/blobs\// };
    const laptop = makeCliHome();
    const started = Date.now();
    const r = await runCastle(laptop, ["build", def, "--plain", "--import-cache", `${web.url}/`], { env: { CASTLE_TRANSFER_WINDOW: "1" } });
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stdout).toBe(ciDigest);
    expect(Date.now() - started).toBeLessThan(45_000);
    // The big blobs (base, data) are abandoned and imported locally; app's and tool's blobs are
    // a few dozen bytes and trickle through in time. Then: what was pulled is unsigned.
    expect(warnings(r.stderr), r.stderr).toEqual([
      expect.stringMatching(/^warning: http:\/\/127\.0\.0\.1:\d+\/ too slow: built 2 layers locally \(base, data\) — .* below the floor of 100\.0 kB\/s; abandoned/),
      expect.stringMatching(/^warning: http:\/\/127\.0\.0\.1:\d+\/: 2 layers pulled, none signed/),
    ]);
    expect(checkStore(laptop.cache).problems).toEqual([]);
    web.mode = { kind: "serve" };
  });

  it("cancelled in the middle of a pull: a cancellation, not a bad remote", async () => {
    web.mode = { kind: "trickle", bytes: 64, everyMs: 200, match: /\/blobs\// };
    const laptop = makeCliHome();
    const child = spawnCastle(laptop, ["build", def, "--plain", "--import-cache", `${web.url}/`]);
    let seen = "";
    let sent = false;
    child.stderr?.on("data", (chunk: Buffer) => {
      seen += chunk.toString();
      if (!sent && /^pulling /m.test(seen)) {
        sent = true;
        setTimeout(() => child.kill("SIGTERM"), 500);
      }
    });
    const r = await collect(child, 60_000);
    expect(r.code, describeRun(r)).toBe(143);
    expect(r.stderr).toMatch(/^castle: interrupted \(SIGTERM\): nothing half-built was kept/m);
    expect(r.stderr).not.toMatch(/skipped \w+: \w+ failed/);
    expect(r.stderr).not.toMatch(/truncated|bad copy|too slow|corrupt|not reproducible/i);
    expect(warnings(r.stderr)).toEqual([]);
    expect(checkStore(laptop.cache).problems).toEqual([]);
    web.mode = { kind: "serve" };
  });
});

describe.skipIf(skip)("a remote that is down", () => {
  it("is one warning for the whole run, however many layers it cost", async () => {
    const dead = `http://127.0.0.1:${await closedPort()}/cache`;
    const r = await runCastle(makeCliHome(), ["build", def, "--plain", "--import-cache", dead]);
    expect(r.code, describeRun(r)).toBe(0);
    expect(warnings(r.stderr)).toEqual([expect.stringMatching(/^warning: http:\/\/127\.0\.0\.1:\d+\/cache unreachable: built 4 layers locally \(app, base, data, tool\) — cannot reach/)]);
  });

  it("fails an export with --strict-export, and the hint says that is why", async () => {
    const dead = `oci://127.0.0.1:${await closedPort()}/team/cache`;
    const r = await runCastle(makeCliHome(), ["build", def, "--plain", "--export-cache", dead, "--strict-export"]);
    expect(r.code, describeRun(r)).toBe(5);
    expect(r.stderr).toMatch(/^castle: cannot reach the remote cache oci:\/\//m);
    expect(r.stderr).toMatch(/^hint: --strict-export makes a failed export fail the build; without it Castle warns and goes on$/m);
    expect(r.stderr).not.toMatch(/builds locally instead/);
  });
});

describe.skipIf(registrySkip)("a registry that misbehaves", () => {
  let registry: Registry;
  let good: Record<string, string>;
  let wrong: Record<string, string>;
  beforeAll(async () => {
    registry = await startRegistry({ kind: "htpasswd", user: "ci", password: "right" });
    good = { DOCKER_CONFIG: readable(dockerConfig(registry.host, "ci", "right")) };
    wrong = { DOCKER_CONFIG: readable(dockerConfig(registry.host, "ci", "wrong")) };
  });
  afterAll(async () => {
    await registry?.dispose();
  });
  const readable = (dir: string) => {
    giveToRunner(dir);
    return dir;
  };
  let repos = 0;
  const url = () => `oci://${registry.host}/faults/r${++repos}`;

  it("wrong credentials: one access warning and a local build; with --strict-export, exit 5", async () => {
    const target = url();
    const r = await runCastle(makeCliHome(), ["build", def, "--plain", "--import-cache", target, "--export-cache", target], { env: wrong });
    expect(r.code, describeRun(r)).toBe(0);
    const lines = warnings(r.stderr);
    expect(lines, r.stderr).toHaveLength(2); // One for importing, one for exporting.
    expect(lines.every((l) => / refused access: .*config\.json/.test(l)), r.stderr).toBe(true);
    const strict = await runCastle(makeCliHome(), ["build", def, "--plain", "--export-cache", target, "--strict-export"], { env: wrong });
    expect(strict.code, describeRun(strict)).toBe(5);
    expect(strict.stderr).toMatch(/^castle: the remote cache oci:\/\/.* refused access/m);
    const check = openRemote(target, { env: good });
    for await (const _ of check.list()) throw new Error("a refused push published something");
  });

  it("an upload cut off publishes no tag; the next export completes it", async () => {
    const proxy = await startFaultProxy(registry.port, { kind: "cut-upload", afterBytes: 200_000, match: { method: "PUT", path: /\/blobs\/uploads\// } });
    const repo = `faults/cut${++repos}`;
    const proxyHost = `127.0.0.1:${new URL(proxy.endpoint).port}`;
    try {
      const ci = makeCliHome();
      const viaProxy = { DOCKER_CONFIG: readable(dockerConfig(proxyHost, "ci", "right")) };
      const cut = await runCastle(ci, ["build", def, "--plain", "--export-cache", `oci://${proxyHost}/${repo}`], { env: viaProxy });
      expect(cut.code, describeRun(cut)).toBe(0);
      expect(proxy.log.some((entry) => entry.fault === "cut-upload"), JSON.stringify(proxy.log)).toBe(true);
      expect(warnings(cut.stderr), cut.stderr).toEqual([expect.stringMatching(/ layers? not exported \(.*data.*\) — .*while uploading the blob of /)]);
      const tags: string[] = [];
      for await (const manifest of openRemote(`oci://${registry.host}/${repo}`, { env: good }).list()) tags.push(manifest.name);
      // Only layers whose blob went up whole have a tag (those too small to be cut).
      expect(tags).not.toContain("data");
      expect(checkStore(ci.cache).problems).toEqual([]);
      const again = await runCastle(ci, ["build", def, "--plain", "--export-cache", `oci://${registry.host}/${repo}`], { env: good });
      expect(again.code, describeRun(again)).toBe(0);
      expect(warnings(again.stderr), again.stderr).toEqual([]);
      const laptop: CliHome = makeCliHome();
      const pulled = await runCastle(laptop, ["build", def, "--plain", "--import-cache", `oci://${registry.host}/${repo}`], { env: good });
      expect(pulled.code, describeRun(pulled)).toBe(0);
      expect(builtLayers(pulled.stderr)).toEqual([]);
      expect(pulled.stdout).toBe(ciDigest);
    } finally {
      await proxy.close();
    }
  });
});
