// Reliability: a store damaged on disk. Records truncated or pointing at deleted trees, files
// edited inside trees, a compiled definition cut short, a verified download altered: `castle
// cache verify` (the bundled CLI, as uid 65534) must find and remove what it can check, exit 5
// when it found damage, and the next build must rebuild exactly what was lost — never use a
// damaged entry — and leave a consistent store. Trees are read-only once committed, a tree
// directory replaced by a symlink is never used, and `run --verify` / `build --verify` digest
// every tree they use first, rebuilding what does not match.

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  appendFileSync, chmodSync, existsSync, lstatSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, truncateSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHttpServer, type TestServer } from "../../packages/graph/test/helpers/http-server";
import { busyboxMissing, makeBusyboxRootfs } from "../fixtures/rootfs";
import { builtLayers, cliMissing, describeRun, makeCliHome, runCastle, type CliHome } from "./helpers/cli";
import { useTempDirs, writeDefinition } from "./helpers/definitions";
import { checkStore } from "./helpers/store-check";

const skip = cliMissing() ?? busyboxMissing();
if (skip) console.warn(`skipping store corruption tests: ${skip}`);

const temp = useTempDirs("castle-rel-corrupt");
const PAYLOAD = Buffer.from("payload served over http\n".repeat(100));
const PAYLOAD_SHA = createHash("sha256").update(PAYLOAD).digest("hex");

let rootfs: string;
let server: TestServer;
let def: string;
beforeAll(async () => {
  if (skip) return;
  rootfs = makeBusyboxRootfs(temp("rootfs"));
  server = await startHttpServer((_req, res) => {
    res.setHeader("content-length", PAYLOAD.length);
    res.end(PAYLOAD);
  });
  def = writeDefinition(temp("def"), {
    "castle.ts": `import { layer, source, system } from "castle";
const base = layer.import({ name: "base", from: source.local(${JSON.stringify(rootfs)}) });
const payload = source.http({ url: "${server.url}/payload.txt", sha256: "${PAYLOAD_SHA}", name: "payload" });
const lib = layer({ name: "lib", runDeps: [base], script: "mkdir -p /usr/lib && echo lib > /usr/lib/libx.so && echo more > /usr/lib/other" });
const app = layer({ name: "app", runDeps: [lib], mounts: { "/src": payload }, script: "cp /src/payload.txt /app.txt && cat /usr/lib/libx.so >> /app.txt" });
const tool = layer({ name: "tool", runDeps: [base], script: "echo tool > /tool" });
export default system({ name: "corrupt", layers: [app, tool] });
`,
  });
});
afterAll(async () => {
  await server?.close();
});

interface Built {
  home: CliHome;
  digest: string;
  /** Layer name → its record (key, digest). */
  records: Map<string, { key: string; digest: string }>;
}

async function buildFresh(): Promise<Built> {
  const home = makeCliHome();
  const result = await runCastle(home, ["build", def, "--plain"]);
  expect(result.code, describeRun(result)).toBe(0);
  return { home, digest: result.stdout.trim(), records: recordsOf(home) };
}

function recordsOf(home: CliHome): Map<string, { key: string; digest: string }> {
  const out = new Map<string, { key: string; digest: string }>();
  for (const name of readdirSync(join(home.cache, "keys"))) {
    if (!name.endsWith(".json")) continue;
    try {
      const record = JSON.parse(readFileSync(join(home.cache, "keys", name), "utf8")) as { name: string; key: string; digest: string };
      out.set(record.name, record);
    } catch {
      // Damaged records are what some tests make.
    }
  }
  return out;
}

/** Runs `castle build` again: it must succeed with the same system digest; returns what it built. */
async function rebuild(built: Built): Promise<string[]> {
  const result = await runCastle(built.home, ["build", def, "--plain"]);
  expect(result.code, describeRun(result)).toBe(0);
  expect(result.stdout.trim()).toBe(built.digest);
  expect(checkStore(built.home.cache).problems).toEqual([]);
  return builtLayers(result.stderr).sort();
}

describe.skipIf(skip)("store: corrupted entries on disk", () => {
  it("verify finds an edited file, a changed mode and an added file inside trees; the next build rebuilds them", async () => {
    const built = await buildFresh();
    const lib = built.records.get("lib")!;
    const tool = built.records.get("tool")!;
    const libTree = join(built.home.cache, "trees", lib.digest);
    appendFileSync(join(libTree, "usr/lib/libx.so"), "tampered\n");
    chmodSync(join(built.home.cache, "trees", tool.digest, "tool"), 0o755);
    writeFileSync(join(built.home.cache, "trees", built.records.get("app")!.digest, "extra"), "added\n");
    const verify = await runCastle(built.home, ["cache", "verify"]);
    expect(verify.code, describeRun(verify)).toBe(5);
    const reported = [...verify.stderr.matchAll(/^corrupt: ([0-9a-f]{64})$/gm)].map((m) => m[1]).sort();
    expect(reported).toEqual([lib.digest, tool.digest, built.records.get("app")!.digest].sort());
    expect(verify.stdout).toMatch(/: 3 corrupt, 3 keys removed/);
    expect(await rebuild(built)).toEqual(["app", "lib", "tool"]);
    const clean = await runCastle(built.home, ["cache", "verify"]);
    expect(clean.code, describeRun(clean)).toBe(0);
  });

  it("verify finds a truncated record and a record whose tree was deleted; the next build rebuilds them", async () => {
    const built = await buildFresh();
    const lib = built.records.get("lib")!;
    const tool = built.records.get("tool")!;
    truncateSync(join(built.home.cache, "keys", `${lib.key}.json`), 20);
    rmSync(join(built.home.cache, "trees", tool.digest), { recursive: true, force: true });
    const verify = await runCastle(built.home, ["cache", "verify"]);
    expect(verify.code, describeRun(verify)).toBe(5);
    expect(verify.stderr).toMatch(new RegExp(`^damaged record: ${lib.key}`, "m"));
    expect(verify.stderr).toMatch(new RegExp(`^damaged record: ${tool.key}`, "m"));
    expect(existsSync(join(built.home.cache, "keys", `${lib.key}.json`))).toBe(false);
    expect(existsSync(join(built.home.cache, "keys", `${tool.key}.json`))).toBe(false);
    // lib's record is gone (its tree is not): lib is built again, to the same digest, so app
    // (whose key holds lib's output digest) is still cached.
    expect(await rebuild(built)).toEqual(["lib", "tool"]);
  });

  it("rebuilds a truncated record and a deleted tree even without verify", async () => {
    const built = await buildFresh();
    const lib = built.records.get("lib")!;
    const tool = built.records.get("tool")!;
    writeFileSync(join(built.home.cache, "keys", `${lib.key}.json`), "{\"key\":");
    rmSync(join(built.home.cache, "trees", tool.digest), { recursive: true, force: true });
    expect(await rebuild(built)).toEqual(["lib", "tool"]);
  });

  it("recompiles a compiled definition that was cut short", async () => {
    const built = await buildFresh();
    const defs = join(built.home.cache, "defs");
    const bundles = readdirSync(defs).filter((n) => /\.[cm]js$/.test(n));
    expect(bundles.length).toBeGreaterThan(0);
    for (const name of bundles) truncateSync(join(defs, name), 100);
    expect(await rebuild(built)).toEqual([]);
  });

  it("does not trust a verified download that was altered on disk", async () => {
    const built = await buildFresh();
    const download = join(built.home.cache, "downloads", PAYLOAD_SHA);
    expect(existsSync(download)).toBe(true);
    writeFileSync(download, "altered on disk\n");
    // Lose what was made from it, so the source must be realized from the download again.
    for (const name of ["source:payload", "app"]) {
      const record = built.records.get(name)!;
      rmSync(join(built.home.cache, "keys", `${record.key}.json`));
    }
    expect(await rebuild(built)).toEqual(["app"]);
    expect(readFileSync(download)).toEqual(PAYLOAD);
  });

  it("ignores damaged bookkeeping: stat cache, explain notes, roots, totals", async () => {
    const built = await buildFresh();
    for (const dir of ["stat-cache", "explain", "roots"]) {
      const visit = (path: string) => {
        for (const entry of readdirSync(path, { withFileTypes: true })) {
          const abs = join(path, entry.name);
          if (entry.isDirectory()) visit(abs);
          else writeFileSync(abs, "{ damaged");
        }
      };
      if (existsSync(join(built.home.cache, dir))) visit(join(built.home.cache, dir));
    }
    for (const name of readdirSync(built.home.cache)) {
      if (name.endsWith(".json")) writeFileSync(join(built.home.cache, name), "{ damaged");
    }
    expect(await rebuild(built)).toEqual([]);
    const stats = await runCastle(built.home, ["cache", "stats"]);
    expect(stats.code, describeRun(stats)).toBe(0);
    const prune = await runCastle(built.home, ["cache", "prune", "--dry-run"]);
    expect(prune.code, describeRun(prune)).toBe(0);
  });
});

describe.skipIf(skip)("store: trees that run and build use", () => {
  it("committed trees are read-only to their owner, and the store is private to them", async () => {
    const built = await buildFresh();
    expect(statSync(built.home.cache).mode & 0o777).toBe(0o700);
    for (const { digest } of built.records.values()) {
      const tree = join(built.home.cache, "trees", digest);
      expect(statSync(tree).mode & 0o777, `trees/${digest}`).toBe(0o555);
    }
    // As the owner: nothing can be added to or removed from a tree's top.
    const tool = join(built.home.cache, "trees", built.records.get("tool")!.digest);
    const asOwner = (argv: string[]) =>
      process.getuid?.() === 0
        ? spawnSync("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", ...argv], { encoding: "utf8" })
        : spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8" });
    expect(asOwner(["/bin/sh", "-c", `echo x > ${tool}/added`]).status).not.toBe(0);
    expect(asOwner(["/bin/rm", "-f", `${tool}/tool`]).status).not.toBe(0);
    expect(existsSync(join(tool, "tool"))).toBe(true);
    // prune and verify still remove them.
    const prune = await runCastle(built.home, ["cache", "prune", "--keep-days", "0"]);
    expect(prune.code, describeRun(prune)).toBe(0);
    expect(readdirSync(join(built.home.cache, "trees"))).toEqual([]);
    expect(checkStore(built.home.cache).problems).toEqual([]);
  });

  it("a tree directory replaced by a symlink to another tree is never used: run rebuilds it", async () => {
    const built = await buildFresh();
    const lib = join(built.home.cache, "trees", built.records.get("lib")!.digest);
    const tool = join(built.home.cache, "trees", built.records.get("tool")!.digest);
    chmodSync(lib, 0o755);
    rmSync(lib, { recursive: true, force: true });
    symlinkSync(tool, lib);
    const run = await runCastle(built.home, ["run", def, "--plain", "--", "/bin/cat", "/usr/lib/libx.so", "/tool"]);
    expect(run.code, describeRun(run)).toBe(0);
    expect(run.stdout).toBe("lib\ntool\n");
    expect(builtLayers(run.stderr)).toEqual(["lib"]);
    expect(lstatSync(lib).isDirectory()).toBe(true);
    expect(checkStore(built.home.cache).problems).toEqual([]);
  });

  it("run --verify finds a flipped byte and a deleted file, rebuilds those layers, and runs the true system", async () => {
    const built = await buildFresh();
    const lib = join(built.home.cache, "trees", built.records.get("lib")!.digest);
    const app = join(built.home.cache, "trees", built.records.get("app")!.digest);
    const file = join(lib, "usr/lib/libx.so");
    const bytes = readFileSync(file);
    bytes[0] = bytes[0]! ^ 1;
    chmodSync(file, 0o644);
    writeFileSync(file, bytes);
    chmodSync(join(lib, "usr/lib"), 0o755);
    rmSync(join(lib, "usr/lib/other"));
    chmodSync(app, 0o755);
    renameSync(join(app, "app.txt"), join(app, "moved.txt"));
    const plain = await runCastle(built.home, ["run", def, "--plain", "--", "/bin/cat", "/usr/lib/libx.so"]);
    expect(plain.stdout).not.toBe("lib\n"); // without --verify the damage shows (only the lstat is paid)
    const run = await runCastle(built.home, ["run", def, "--plain", "--verify", "--", "/bin/sh", "-c", "cat /usr/lib/libx.so /usr/lib/other; tail -n 1 /app.txt"]);
    expect(run.code, describeRun(run)).toBe(0);
    expect(run.stdout).toBe("lib\nmore\nlib\n");
    expect(run.stderr).toMatch(new RegExp(`^castle: warning: layer lib: its tree ${built.records.get("lib")!.digest} is corrupt`, "m"));
    expect(builtLayers(run.stderr).sort()).toEqual(["app", "lib"]);
    expect(checkStore(built.home.cache).problems).toEqual([]);
  });

  it("build --verify does the same, and finds nothing to do on a sound store", async () => {
    const built = await buildFresh();
    const tool = join(built.home.cache, "trees", built.records.get("tool")!.digest);
    chmodSync(join(tool, "tool"), 0o644);
    writeFileSync(join(tool, "tool"), "tampered\n");
    const build = await runCastle(built.home, ["build", def, "--plain", "--verify"]);
    expect(build.code, describeRun(build)).toBe(0);
    expect(build.stdout.trim()).toBe(built.digest);
    expect(builtLayers(build.stderr)).toEqual(["tool"]);
    const again = await runCastle(built.home, ["build", def, "--plain", "--verify"]);
    expect(again.code, describeRun(again)).toBe(0);
    expect(builtLayers(again.stderr)).toEqual([]);
    expect(again.stderr).not.toMatch(/corrupt/);
  });
});
