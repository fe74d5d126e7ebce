// `castle export` through the bundled binary as uid 65534: --tar writes the flattened root as it
// looks when run (deletions applied, fixed owners and times, the same bytes every time), and
// --oci writes an image layout that skopeo inspects and copies into a docker archive. The OCI
// checks skip with a reason when skopeo is not installed.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliWorld, cliMissing, definition, type CliHome } from "./helpers/cli-harness";

const skip = cliMissing();
if (skip) console.warn(`skipping cli-export: ${skip}`);

function skopeoMissing(): string | undefined {
  try {
    execFileSync("skopeo", ["--version"], { stdio: "ignore" });
    return undefined;
  } catch {
    return "skopeo is not installed (apt install skopeo)";
  }
}
const noSkopeo = skopeoMissing();
if (!skip && noSkopeo) console.warn(`skipping the OCI export checks: ${noSkopeo}`);

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

describe.skipIf(skip)("castle export", () => {
  let world: CliWorld;
  let home: CliHome;
  let def: string;
  let out: string;

  beforeAll(() => {
    world = CliWorld.create();
    home = world.home();
    out = world.ownedDir("out");
    def = world.dir("def", {
      "castle.ts": definition(
        world.rootfs,
        `const app = layer({ name: "app", runDeps: [base], script: "mkdir -p /opt/app /etc && echo 'echo hello from the image' > /opt/app/run.sh && chmod 755 /opt/app/run.sh && echo exported > /etc/motd && rm /bin/vi" });
export default system({ name: "exported", layers: [app], entrypoint: ["/bin/sh", "/opt/app/run.sh"], env: { APP_MODE: "image" }, cwd: "/opt/app" });`,
      ),
    });
  });
  afterAll(() => world?.dispose("cli-export"));

  it("--tar writes the flattened root, deletions applied, the same bytes every time", async () => {
    const tar = join(out, "root.tar");
    const r = await home.run(["export", def, "--tar", tar]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${tar}\n`);
    const listing = execFileSync("tar", ["tvf", tar], { encoding: "utf8" });
    expect(listing).toMatch(/^-rwxr-xr-x root\/root +\d+ 1980-01-01 00:00 bin\/busybox$/m);
    expect(listing).toMatch(/^lrwxrwxrwx root\/root +0 1980-01-01 00:00 bin\/sh -> busybox$/m);
    expect(listing).toMatch(/ opt\/app\/run\.sh$/m);
    expect(listing).toMatch(/ etc\/motd$/m);
    expect(listing).not.toMatch(/ bin\/vi( |$)/m); // deleted by the app layer: a whiteout, applied
    expect(listing).not.toMatch(/\.wh\./);
    // The mount points a root needs in a chroot or a container, though no layer made them.
    expect(listing).toMatch(/^drwxr-xr-x root\/root +0 1980-01-01 00:00 dev\/$/m);
    expect(listing).toMatch(/^dr-xr-xr-x root\/root +0 1980-01-01 00:00 proc\/$/m);
    expect(listing).toMatch(/^dr-xr-xr-x root\/root +0 1980-01-01 00:00 sys\/$/m);
    expect(listing).toMatch(/ tmp\/$/m);
    expect(execFileSync("tar", ["xOf", tar, "etc/motd"], { encoding: "utf8" })).toBe("exported\n");

    const again = join(out, "again.tar");
    expect((await home.run(["export", def, "--tar", again])).code).toBe(0);
    expect(sha256(again)).toBe(sha256(tar));
  });

  it("--tar with a .tar.gz name writes gzip", async () => {
    const tgz = join(out, "root.tar.gz");
    expect((await home.run(["export", def, "--tar", tgz])).code).toBe(0);
    expect(readFileSync(tgz).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(execFileSync("tar", ["tzf", tgz], { encoding: "utf8" })).toMatch(/^opt\/app\/run\.sh$/m);
  });

  it.skipIf(noSkopeo)("--oci writes an image layout that skopeo inspects and copies", async () => {
    const oci = join(out, "oci");
    const r = await home.run(["export", def, "--oci", oci]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${oci} exported:latest sha256:[0-9a-f]{64}\\n$`));

    const inspect = JSON.parse(execFileSync("skopeo", ["inspect", `oci:${oci}`], { encoding: "utf8" })) as {
      Layers: string[];
      Env: string[];
      Architecture: string;
      Os: string;
    };
    expect(inspect.Layers).toHaveLength(2); // base and app: one image layer per Castle layer
    expect(inspect.Os).toBe("linux");
    expect(inspect.Env).toContain("APP_MODE=image");
    const config = JSON.parse(execFileSync("skopeo", ["inspect", "--config", `oci:${oci}:exported:latest`], { encoding: "utf8" })) as {
      config: { Entrypoint: string[]; WorkingDir: string };
    };
    expect(config.config.Entrypoint).toEqual(["/bin/sh", "/opt/app/run.sh"]);
    expect(config.config.WorkingDir).toBe("/opt/app");

    const archive = join(out, "image.tar");
    execFileSync("skopeo", ["--insecure-policy", "copy", "--quiet", `oci:${oci}`, `docker-archive:${archive}:exported:latest`], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    const unpacked = join(out, "docker");
    mkdirSync(unpacked);
    execFileSync("tar", ["xf", archive, "-C", unpacked]);
    const manifest = JSON.parse(readFileSync(join(unpacked, "manifest.json"), "utf8")) as { RepoTags: string[]; Layers: string[] }[];
    expect(manifest[0]!.RepoTags).toEqual(["docker.io/library/exported:latest"]);
    expect(manifest[0]!.Layers).toHaveLength(2);
    // The top layer carries the deletion as an OCI whiteout.
    const top = execFileSync("tar", ["tf", join(unpacked, manifest[0]!.Layers[1]!)], { encoding: "utf8" });
    expect(top).toMatch(/^bin\/\.wh\.vi$/m);
  });

  it("--oci refuses a directory that is not empty", async () => {
    const r = await home.run(["export", def, "--oci", join(world.base, "def")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^castle: \S+\/def exists and is not empty\nhint: see `castle export --help`\n$/);
    expect(existsSync(join(world.base, "def/index.json"))).toBe(false);
  });
});
