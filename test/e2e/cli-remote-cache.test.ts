// Remote caches through the bundled binary as uid 65534, against real servers on loopback: S3
// (s3rver; endpoint and keys through the AWS_* variables the remote reads), an OCI registry
// (docker-registry), a static HTTP server, and a directory. --export-cache then --import-cache
// between two stores over each, signed with a key from `castle cache keygen` and verified with a
// trusted key from the configuration file; several import remotes tried in order; a manifest
// that lies refused; `cache push` / `cache pull` (everything, or what one system needs);
// CASTLE_IMPORT_CACHE; `castle config`; and a dead remote — one warning and a local build, or
// exit 5 with --strict-export and a hint that says why.

import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Registry, registryMissing, startRegistry } from "../../packages/cache/test/helpers/registry";
import { startS3Server, type S3Server } from "../../packages/cache/test/helpers/s3-server";
import { type StaticServer, startStaticServer } from "../../packages/cache/test/helpers/static-server";
import { closedPort } from "../../packages/cache/test/helpers/tcp-proxy";
import { CliWorld, cliMissing, definition, giveToUser, type CliHome } from "./helpers/cli-harness";

const skip = cliMissing();
if (skip) console.warn(`skipping cli-remote-cache: ${skip}`);

describe.skipIf(skip)("remote caches on S3", () => {
  let world: CliWorld;
  let s3: S3Server;
  let def: string;
  let s3env: Record<string, string>;
  let digest: string;

  const castle = (home: CliHome, args: string[], env: Record<string, string> = {}) => home.run(args, { env: { ...s3env, ...env } });
  const names = (text: string, verb: string) => [...text.matchAll(new RegExp(`^(?:\\[[ \\d]+/\\d+\\] )?${verb} (\\S+)`, "gm"))].map((m) => m[1]!).sort();

  beforeAll(async () => {
    world = CliWorld.create();
    s3 = await startS3Server("castle");
    s3env = {
      AWS_ENDPOINT_URL: s3.endpoint,
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
      AWS_REGION: "us-east-1",
    };
    def = world.dir("def", {
      "castle.ts": definition(
        world.rootfs,
        `const motd = layer({ name: "motd", runDeps: [base], script: "mkdir -p /etc && echo shared > /etc/motd" });
const extra = layer({ name: "extra", runDeps: [motd], script: "mkdir -p /opt && seq 1 1000 > /opt/numbers" });
export default system({ name: "shared", layers: [extra], entrypoint: ["/bin/sh", "-c", "cat /etc/motd; wc -l < /opt/numbers"] });`,
      ),
    });
  });
  afterAll(async () => {
    await s3?.dispose();
    world?.dispose("cli-remote-cache");
  });

  it("--export-cache pushes what a build made; --import-cache pulls it into another store", async () => {
    const builder = world.home("builder");
    const built = await castle(builder, ["build", def, "--plain", "--export-cache", "s3://castle/team"]);
    expect(built.code, built.stderr).toBe(0);
    expect(names(built.stderr, "pushed")).toEqual(["base", "extra", "motd"]);
    digest = built.stdout.trim();

    const user = world.home("user");
    const pulled = await castle(user, ["build", def, "--plain", "--import-cache", "s3://castle/team"]);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(pulled.stdout.trim()).toBe(digest);
    expect(names(pulled.stderr, "pulled")).toEqual(["base", "extra", "motd"]);
    expect(pulled.stderr).toMatch(/^done: 3 layers \(0 built, 3 pulled, 0 cached\)/m);
    const run = await castle(user, ["run", def]);
    expect(run.stdout).toBe("shared\n1000\n");
    expect(run.stderr).toBe("");
  });

  it("cache push uploads what the remote lacks, once", async () => {
    const builder = world.home("pusher");
    expect((await castle(builder, ["build", def])).code).toBe(0);
    const first = await castle(builder, ["cache", "push", "s3://castle/pushed"]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^pushed 4 keys \([\d.]+ [kM]?B\); 0 were already there\n$/);
    const again = await castle(builder, ["cache", "push", "s3://castle/pushed"]);
    expect(again.stdout).toBe("pushed 0 keys (0 B); 4 were already there\n");
  });

  it("cache pull fetches everything, or only what one system needs", async () => {
    const everything = world.home("puller");
    const r = await castle(everything, ["cache", "pull", "s3://castle/pushed"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("pulled 4 keys; 0 were already here\n");
    const ls = JSON.parse((await castle(everything, ["cache", "ls", "--json"])).stdout) as { origin: string }[];
    expect(ls.map((x) => x.origin)).toEqual(["pulled", "pulled", "pulled", "pulled"]);
    expect((await castle(everything, ["run", def, "--plain"])).stderr).toBe("");

    const oneSystem = world.home("system-puller");
    const sys = await castle(oneSystem, ["cache", "pull", "s3://castle/pushed", def, "--plain"]);
    expect(sys.code, sys.stderr).toBe(0);
    expect(sys.stdout).toBe("3 pulled, 0 already here, 0 built\n");
  });

  it("CASTLE_IMPORT_CACHE is the default --import-cache", async () => {
    const home = world.home("env-user");
    const r = await castle(home, ["build", def, "--plain"], { CASTLE_IMPORT_CACHE: "s3://castle/team" });
    expect(r.stdout.trim()).toBe(digest);
    expect(r.stderr).toMatch(/0 built, 3 pulled/);
  });

  it("a dead remote is a warning and a local build; --strict-export makes a failed export fatal (5)", async () => {
    await s3.stop();
    const home = world.home("offline-user");
    const r = await castle(home, ["build", def, "--plain", "--import-cache", "s3://castle/team"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(digest);
    expect(r.stderr).toMatch(/^warning: .*remote cache s3:\/\/castle\/team/m);
    expect(r.stderr).toMatch(/3 built, 0 pulled/);

    const strict = await castle(world.home("strict"), ["build", def, "--plain", "--export-cache", "s3://castle/team", "--strict-export"]);
    expect(strict.code).toBe(5);
    expect(strict.stderr).toMatch(/^castle: .*s3:\/\/castle\/team/m);
    const push = await castle(home, ["cache", "push", "s3://castle/team"]);
    expect(push.code).toBe(5);
    expect(push.stderr).toMatch(/^castle: .*s3:\/\/castle\/team/m);
    expect(push.stderr).not.toMatch(/internal error|\n\s+at /);
    await s3.start();
  });
});

const registrySkip = skip ?? registryMissing();
if (registrySkip && !skip) console.warn(`skipping the registry cases of cli-remote-cache: ${registrySkip}`);

describe.skipIf(skip)("signed remote caches of every kind", () => {
  let world: CliWorld;
  let s3: S3Server;
  let registry: Registry | undefined;
  let web: StaticServer;
  let def: string;
  let exported: string;
  let publicKey: string;
  let ci: CliHome;
  let digest: string;
  const layers = ["base", "extra", "motd"];

  /** A home whose configuration file holds these settings. */
  function homeWith(name: string, settings: Record<string, unknown>): CliHome {
    const home = world.home(name);
    const dir = join(home.dir, ".config/castle");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "config.json"), JSON.stringify(settings));
    giveToUser(join(home.dir, ".config"));
    return home;
  }
  /** Built on a CI home with the signing key, exported to url; sets digest. */
  async function exportSigned(url: string, name: string): Promise<void> {
    const builder = homeWith(name, { "cache.signingKey": join(ci.dir, "keys/ci-1.secret") });
    const built = await builder.run(["build", def, "--plain", "--export-cache", url], { env: s3env() });
    expect(built.code, built.stderr).toBe(0);
    expect(names(built.stderr, "pushed")).toEqual(layers);
    digest ??= built.stdout.trim();
    expect(built.stdout.trim()).toBe(digest);
  }
  const s3env = () => ({ AWS_ENDPOINT_URL: s3.endpoint, AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER", AWS_REGION: "us-east-1" });
  const names = (text: string, verb: string) => [...text.matchAll(new RegExp(`^(?:\\[[ \\d]+/\\d+\\] )?${verb} (\\S+)`, "gm"))].map((m) => m[1]!).sort();

  beforeAll(async () => {
    world = CliWorld.create();
    s3 = await startS3Server("castle");
    if (!registrySkip) registry = await startRegistry();
    exported = world.ownedDir("exported");
    web = await startStaticServer(exported);
    def = world.dir("def", {
      "castle.ts": definition(
        world.rootfs,
        `const motd = layer({ name: "motd", runDeps: [base], script: "mkdir -p /etc && echo signed > /etc/motd" });
const extra = layer({ name: "extra", runDeps: [motd], script: "mkdir -p /opt && seq 1 50 > /opt/numbers" });
export default system({ name: "signed", layers: [extra], entrypoint: ["/bin/sh", "-c", "cat /etc/motd"] });`,
      ),
    });
    ci = world.home("ci");
    const keygen = await ci.run(["cache", "keygen", "ci-1", "--dir", join(ci.dir, "keys")]);
    expect(keygen.code, keygen.stderr).toBe(0);
    publicKey = keygen.stdout.trim();
  });
  afterAll(async () => {
    await web?.close();
    await registry?.dispose();
    await s3?.dispose();
    world?.dispose("cli-remote-cache (signed)");
  });

  it("castle cache keygen writes a private secret and prints the public key; it never overwrites one", async () => {
    expect(publicKey).toMatch(/^ci-1:[A-Za-z0-9+/]{43}=$/);
    expect(statSync(join(ci.dir, "keys/ci-1.secret")).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(ci.dir, "keys/ci-1.public"), "utf8")).toBe(`${publicKey}\n`);
    const again = await ci.run(["cache", "keygen", "ci-1", "--dir", join(ci.dir, "keys")]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/^castle: .*ci-1\.secret already exists/m);
  });

  const backends: Array<[string, () => string | undefined, () => string | undefined]> = [
    ["a directory", () => `file://${exported}`, () => `file://${exported}`],
    ["a static web server serving that directory", () => `file://${exported}`, () => `${web.url}/`],
    ["S3", () => "s3://castle/signed", () => "s3://castle/signed"],
    ["an OCI registry", () => registry && `oci://${registry.host}/team/castle`, () => registry && `oci://${registry.host}/team/castle`],
  ];
  it.each(backends)("round trip over %s: signed by CI, verified on the laptop", async (what, exportUrl, importUrl) => {
    if (!exportUrl() || !importUrl()) {
      console.warn(`skipping the round trip over ${what}: ${registrySkip}`);
      return;
    }
    await exportSigned(exportUrl()!, `ci-${what.replace(/\W+/g, "-")}`);
    const laptop = homeWith(`laptop-${what.replace(/\W+/g, "-")}`, { "cache.trustedKeys": [publicKey] });
    const pulled = await laptop.run(["build", def, "--plain", "--import-cache", importUrl()!], { env: s3env() });
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(pulled.stdout.trim()).toBe(digest);
    expect(names(pulled.stderr, "pulled")).toEqual(layers);
    expect(pulled.stderr.split("\n")).toContain(`${importUrl()}: 3 layers pulled, signed by ci-1 (trusted)`);
    expect(pulled.stderr).not.toMatch(/warning/);
  });

  it("tries import remotes in order: one warning for a dead one, the layers from the next", async () => {
    await exportSigned(`file://${exported}`, "ci-order");
    const laptop = homeWith("laptop-order", { "cache.trustedKeys": [publicKey] });
    const dead = `oci://127.0.0.1:${await closedPort()}/team/castle`;
    const r = await laptop.run(["build", def, "--plain", "--import-cache", dead, "--import-cache", `file://${exported}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(digest);
    expect(names(r.stderr, "pulled")).toEqual(layers);
    const warnings = r.stderr.split("\n").filter((line) => line.startsWith("warning:"));
    expect(warnings).toEqual([expect.stringMatching(/^warning: oci:\/\/127\.0\.0\.1:\d+\/team\/castle unreachable: pulled \d layers? from the next remote instead — cannot reach/)]);
  });

  it("refuses a manifest that lies (another layer's, key edited) when keys are trusted, and builds that layer", async () => {
    await exportSigned(`file://${exported}`, "ci-lie");
    const lying = world.ownedDir("lying");
    const copy = await ci.run(["cache", "pull", `file://${exported}`]);
    expect(copy.code, copy.stderr).toBe(0);
    const push = await ci.run(["cache", "push", `file://${lying}`, "--signing-key", join(ci.dir, "keys/ci-1.secret")]);
    expect(push.code, push.stderr).toBe(0);
    const listed = JSON.parse((await ci.run(["cache", "ls", "--json"])).stdout) as Array<{ name: string; key: string }>;
    const manifests = Object.fromEntries(listed.map((r) => [r.name, r.key]));
    const extra = JSON.parse(readFileSync(join(lying, "keys", manifests.extra!), "utf8")) as Record<string, unknown>;
    writeFileSync(join(lying, "keys", manifests.motd!), JSON.stringify({ ...extra, key: manifests.motd }));
    const laptop = homeWith("laptop-lie", { "cache.trustedKeys": [publicKey] });
    const r = await laptop.run(["build", def, "--plain", "--import-cache", `file://${lying}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(digest);
    expect(names(r.stderr, "building")).toEqual(["motd"]);
    expect(r.stderr).toMatch(/^warning: file:\/\/.* offered untrusted manifests: built 1 layer locally \(motd\) — .*does not match its contents/m);
    expect(r.stderr).not.toMatch(/not reproducible/);
  });

  it("castle config shows each setting and where it came from; a bad file is exit 2 with the closest key", async () => {
    const home = homeWith("config-user", { "cache.trustedKeys": [publicKey], "transfer.windowSeconds": 5 });
    const r = await home.run(["config"], { env: { CASTLE_IMPORT_CACHE: "s3://env/cache" } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^config file: ${home.dir}/\\.config/castle/config\\.json$`, "m"));
    expect(r.stdout).toMatch(/^cache\.import +s3:\/\/env\/cache +\(env CASTLE_IMPORT_CACHE\)$/m);
    expect(r.stdout).toMatch(/^cache\.trustedKeys +ci-1:\S+ +\(file\)$/m);
    expect(r.stdout).toMatch(/^transfer\.windowSeconds +5 +\(file\)$/m);
    expect(r.stdout).toMatch(/^transfer\.minBytesPerSecond +100000 +\(default\)$/m);
    const bad = homeWith("config-typo", { "cache.trustedKey": [publicKey] });
    const typo = await bad.run(["build", def, "--plain"]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/^castle: the configuration file .* is not valid: "cache\.trustedKey" is not a setting \(did you mean "cache\.trustedKeys"\?\)$/m);
  });

  it.skipIf(registrySkip)("cache push and cache pull over a registry", async () => {
    const url = `oci://${registry!.host}/team/pushed`;
    expect((await ci.run(["build", def, "--plain"])).code).toBe(0);
    const push = await ci.run(["cache", "push", url, "--signing-key", join(ci.dir, "keys/ci-1.secret")]);
    expect(push.code, push.stderr).toBe(0);
    const count = /^pushed (\d+) keys \([\d.]+ [kM]?B\), signed with .*ci-1\.secret; 0 were already there\n$/.exec(push.stdout)?.[1];
    expect(Number(count), push.stdout).toBeGreaterThanOrEqual(3);
    const laptop = homeWith("laptop-pull", { "cache.trustedKeys": [publicKey] });
    const pull = await laptop.run(["cache", "pull", url]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout).toBe(`pulled ${count} keys; 0 were already here\n`);
    expect(pull.stderr.split("\n")).toContain(`${url}: ${count} layers pulled, signed by ci-1 (trusted)`);
    // An HTTP remote is read-only: pushing to it says so and publishes nothing.
    const readOnly = await ci.run(["cache", "push", `${web.url}/`]);
    expect(readOnly.code).toBe(5);
    expect(readOnly.stderr).toMatch(/^castle: .*read-only/m);
    expect(readOnly.stderr).toMatch(/^hint: nothing partial was published/m);
  });
});
