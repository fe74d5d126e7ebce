// Remote caches through the bundled binary as uid 65534, against a real S3 server (s3rver on
// loopback; endpoint and keys through the AWS_* variables the remote reads): --export-cache then
// --import-cache between two stores, `cache push` / `cache pull` (everything, or what one system
// needs), CASTLE_IMPORT_CACHE, and a dead remote — a warning and a local build, or exit 5 with
// --strict-export.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startS3Server, type S3Server } from "../../packages/cache/test/helpers/s3-server";
import { CliWorld, cliMissing, definition, type CliHome } from "./helpers/cli-harness";

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
