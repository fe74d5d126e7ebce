// Castle inside the systems it runs, through the bundled binary as uid 65534, with zero set-up:
// - a busybox-static system (no libc at all) gets a working `castle`: the runtime carries its own
//   loader and libraries; it is read-only, and nothing of it is written into the system's files;
// - the definition is at ~/castle-src and the inner `castle run` defaults to it; a nested build of
//   the unchanged system builds nothing (the outer store is a lower tier), its exit status comes
//   out through both levels; a change made inside rebuilds only what it touches, in the inner
//   store; the system cannot write into the outer store;
// - a git definition is a work tree of the commit run, kept with the system's state;
// - Castle nests at any depth: a Castle inside a nested system runs it again;
// - a prune on the host counts what the Castles inside use of its store; `--verify` inside checks
//   the outer store's trees too, and makes a corrupt one again in the inner store;
// - instances have ids at every level: ps, exec and kill work inside;
// - a remote cache configured on the host is usable inside: its settings pass in, its
//   credentials only when asked for (-e); the runtime's zstd unpacks what is pulled.

import { generateKeyPairSync } from "node:crypto";
import { cpSync, existsSync, readdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3RVER_CREDENTIALS, startS3Server } from "../../packages/cache/test/helpers/s3-server";
import { commitAll, git, initRepo } from "./helpers/cli-git";
import { CliWorld, cliMissing, runtimeMissing, writeFiles, type CliHome, type Started } from "./helpers/cli-harness";

const skip = cliMissing() ?? runtimeMissing();
if (skip) console.warn(`skipping cli-inside: ${skip}`);

/** castle.ts of the test system; its base is ./rootfs, so the same path works inside. */
const system = (motd: string) => `import { layer, source, system } from "castle";
const base = layer.import({ name: "base", from: source.local("./rootfs") });
const motd = layer({ name: "motd", runDeps: [base], script: "mkdir -p /etc && echo '${motd}' > /etc/motd" });
export default system({ name: "nest", layers: [motd], entrypoint: ["/bin/cat", "/etc/motd"] });
`;

/** A definition directory at dir: castle.ts and a copy of the busybox rootfs beside it. */
function definitionDir(world: CliWorld, dir: string, motd: string): string {
  cpSync(world.rootfs, join(dir, "rootfs"), { recursive: true, verbatimSymlinks: true });
  writeFiles(dir, { "castle.ts": system(motd) });
  return dir;
}

describe.skipIf(skip)("castle inside the systems it runs", () => {
  let world: CliWorld;
  let home: CliHome;
  let def: string;
  const background: Started[] = [];
  /** `castle run def -- sh -c script` as uid 65534. */
  const inside = (script: string, args: string[] = [], timeoutMs = 60_000) =>
    home.run(["run", def, ...args, "--", "/bin/sh", "-c", script], { timeoutMs });

  beforeAll(async () => {
    world = CliWorld.create();
    home = world.home();
    def = definitionDir(world, world.dir("def"), "outer motd");
    const built = await home.run(["build", def]);
    expect(built.code, built.stderr).toBe(0);
  });
  afterAll(async () => {
    for (const s of background) s.child.kill("SIGKILL");
    await Promise.all(background.map((s) => s.exited));
    world?.dispose("cli-inside");
  });

  it("a system without any libc gets a working castle, read-only, and none of its files change", async () => {
    expect(existsSync(join(world.rootfs, "lib"))).toBe(false); // busybox-static: nothing to load
    const r = await inside("castle --version && command -v castle && ls /lib 2>&1; touch /.castle/x 2>&1; echo PATH=$PATH");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^castle \d+\.\d+\.\d+$/m);
    expect(r.stdout).toMatch(/^\/usr\/local\/bin\/castle$/m);
    expect(r.stdout).toMatch(/ls: \/lib: No such file or directory/);
    expect(r.stdout).toMatch(/touch: \/.castle\/x: Read-only file system/);
    expect(r.stdout).toMatch(/^PATH=.*:\/\.castle\/bin$/m);
    // Mount points come from Castle's own bottom layer: the system's upper dir stays empty.
    expect(readdirSync(join(home.dataDir, "systems/nest/upper"))).toEqual([]);

    const without = await inside("command -v castle || echo none; ls -a / | grep -c castle || true", ["--no-castle"]);
    expect(without.code, without.stderr).toBe(0);
    expect(without.stdout).toBe("none\n0\n");
    // The definition can say the same for every run.
    const plain = definitionDir(world, world.dir("plain"), "plain");
    writeFiles(plain, { "castle.ts": system("plain").replace(`entrypoint: ["/bin/cat", "/etc/motd"]`, `castle: false`) });
    const off = await home.run(["run", plain, "--", "/bin/sh", "-c", "command -v castle || echo none; ls ~/castle-src 2>&1 || true"]);
    expect(off.code, off.stderr).toBe(0);
    expect(off.stdout).toMatch(/^none\nls: \/root\/castle-src: No such file or directory\n$/);
  });

  it("builds nothing for the unchanged system inside, and passes the exit status out through both", async () => {
    const r = await inside("ls ~/castle-src; castle run --plain -- sh -c 'cat /etc/motd; exit 42'");
    expect(r.code, r.stderr).toBe(42);
    expect(r.stdout).toBe("castle.ts\nrootfs\nouter motd\n");
    expect(r.stderr).toBe(""); // a fully cached run prints nothing: every layer came from the outer store
    const innerStore = join(home.dataDir, "systems/nest/castle-store/cache");
    expect(readdirSync(join(innerStore, "trees"))).toEqual([]);
  });

  it("nests at any depth: three levels down the system runs, from the outer store, and its status comes out", async () => {
    const r = await inside(`castle run --plain -- sh -c "castle run --plain -- sh -c 'cat /etc/motd; exit 43'"`);
    expect(r.code, r.stderr).toBe(43);
    expect(r.stdout).toBe("outer motd\n");
    expect(r.stderr).toBe("");
  });

  it("a change made inside rebuilds only that layer, in the inner store; the outer store stays read-only", async () => {
    const script = [
      "cp -R ~/castle-src ~/def && sed -i 's/outer motd/inner motd/' ~/def/castle.ts",
      "castle run ~/def --plain -- cat /etc/motd",
      "touch /.castle/stores/0/trees/x 2>&1",
      "unshare -Urm sh -c 'mount -o remount,rw,bind /.castle/stores/0 /.castle/stores/0' 2>&1 || echo remount refused",
    ].join("\n");
    const r = await inside(script);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout, r.stderr).toMatch(/^inner motd$/m);
    expect(r.stderr).toMatch(/^building motd \((new|script changed)\)$/m); // "new" when this test runs alone
    expect(r.stderr).toMatch(/^done: 2 layers \(1 built, 0 pulled, 1 cached\)/m);
    expect(r.stdout).toMatch(/Read-only file system/);
    expect(r.stdout).toMatch(/^remount refused$/m);
    const innerTrees = readdirSync(join(home.dataDir, "systems/nest/castle-store/cache/trees"));
    expect(innerTrees).toHaveLength(1); // the changed layer only; its base came from the outer store
  });

  it("a prune on the host keeps what a Castle inside uses of the host's store, as long as it would its own", async () => {
    // A system whose definition dir also holds another system, alt/, built on the host first.
    const gc = definitionDir(world, world.dir("gc"), "gc motd");
    writeFiles(gc, {
      "castle.ts": system("gc motd").replace(`name: "nest"`, `name: "gcnest"`),
      "alt/castle.ts": `import { layer, source, system } from "castle";
const base = layer.import({ name: "base", from: source.local("../rootfs") });
const alt = layer({ name: "alt", runDeps: [base], script: "echo alt > /alt" });
export default system({ name: "alt", layers: [alt], entrypoint: ["/bin/cat", "/alt"] });
`,
    });
    const built = await home.run(["build", gc, "--plain"]);
    expect(built.code, built.stderr).toBe(0);
    const builtAlt = await home.run(["build", join(gc, "alt"), "--json"]);
    expect(builtAlt.code, builtAlt.stderr).toBe(0);
    const alt = (JSON.parse(builtAlt.stdout) as { layers: { name: string; digest: string }[] }).layers.find((l) => l.name === "alt")!;
    const altTree = join(home.cacheDir, "trees", alt.digest);
    // Inside gcnest, a Castle builds alt: all of it from the host's store.
    const inner = await home.run(["run", gc, "--", "/bin/sh", "-c", "castle build ~/castle-src/alt --plain"]);
    expect(inner.code, inner.stderr).toBe(0);
    expect(inner.stderr).toBe(""); // fully cached: nothing built or printed
    const innerRoot = join(home.dataDir, "systems/gcnest/castle-store/cache/roots/alt.json");
    expect(existsSync(innerRoot)).toBe(true);
    const age = (file: string, days: number) => {
      const root = JSON.parse(readFileSync(file, "utf8")) as { usedAt: string };
      const then = new Date(Date.now() - days * 86400e3);
      writeFileSync(file, JSON.stringify({ ...root, usedAt: then.toISOString() }));
      utimesSync(file, then, then);
    };
    // The host last used alt 60 days ago; the Castle inside gcnest used it just now.
    age(join(home.cacheDir, "roots/alt.json"), 60);
    const kept = await home.run(["cache", "prune"]);
    expect(kept.code, kept.stderr).toBe(0);
    expect(existsSync(altTree)).toBe(true);
    const again = await home.run(["run", gc, "--", "/bin/sh", "-c", "castle run ~/castle-src/alt --plain"]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe("alt\n");
    expect(again.stderr).toBe(""); // nothing built: alt is still in the host's store
    // Once the use inside is as old as the host's, alt goes like any layer nobody used for 30 days.
    age(innerRoot, 60);
    const pruned = await home.run(["cache", "prune"]);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stdout).toMatch(/^removed [1-9]\d* keys and [1-9]\d* trees/);
    expect(existsSync(altTree)).toBe(false);
  });

  it("--verify inside checks the outer store's trees too: a corrupt one is left there, and made again inside", async () => {
    const found = await home.run(["build", def, "--json"]);
    expect(found.code, found.stderr).toBe(0);
    const motd = (JSON.parse(found.stdout) as { layers: { name: string; digest: string }[] }).layers.find((l) => l.name === "motd")!;
    const file = join(home.cacheDir, "trees", motd.digest, "etc/motd");
    writeFileSync(file, "tampered\n");
    try {
      const r = await inside("castle run --verify --plain -- cat /etc/motd", ["--ephemeral"]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe("outer motd\n");
      expect(r.stderr).toContain(
        `castle: warning: layer motd: its tree ${motd.digest} is corrupt (it digests to `,
      );
      expect(r.stderr).toMatch(/\); left in the outer store \(\/\.castle\/stores\/0\/trees\/[0-9a-f]{64}, read-only here\) and not used, so it is made again$/m);
      expect(r.stderr).toMatch(/^\[2\/2\] built motd/m);
      expect(readFileSync(file, "utf8")).toBe("tampered\n"); // the Castle inside cannot touch it
    } finally {
      writeFileSync(file, "outer motd\n");
    }
  });

  it("says clearly why a store moved onto the system's overlay root cannot build", async () => {
    // Not the default (that is /.castle/state, on the host's filesystem): overlayfs refuses an
    // upper dir on overlayfs, which is what the system's root is.
    const r = await inside("cp -R ~/castle-src ~/d2 && sed -i 's/outer motd/d2 motd/' ~/d2/castle.ts && CASTLE_CACHE_DIR=/root/store castle build ~/d2 --plain", ["--ephemeral"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not supported as upperdir/);
    expect(r.stderr).toMatch(/^full log: \/root\/store\/logs\/\S+\.log$/m);
  });

  it("a git definition is a work tree of the commit run, kept with the system's state", async () => {
    const repo = world.dir("repo");
    definitionDir(world, join(repo, "systems/nest"), "from git");
    initRepo(repo);
    const commit = commitAll(repo, "first");
    const first = await home.run(["run", repo, "main", "systems/nest", "--", "/bin/sh", "-c",
      "echo $CASTLE_DEFINITION; ls ~/castle-src/systems/nest; echo // note >> ~/castle-src/systems/nest/castle.ts; castle run --plain -- true"]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toBe("/root/castle-src/systems/nest\ncastle.ts\nrootfs\n");
    const tree = join(home.dataDir, "systems/nest/castle-src");
    expect(readFileSync(join(tree, "systems/nest/castle.ts"), "utf8")).toMatch(/\/\/ note\n$/);
    expect(JSON.parse(readFileSync(join(home.dataDir, "systems/nest/castle-src.json"), "utf8")).commit).toBe(commit);
    expect(git(repo, "status", "--porcelain")).toBe(""); // the repository itself is untouched
    // The edit persists; a new commit does not overwrite an edited work tree (and says so).
    writeFileSync(join(repo, "systems/nest/castle.ts"), system("second"));
    commitAll(repo, "second");
    const again = await home.run(["run", repo, "main", "systems/nest", "--", "/bin/sh", "-c", "tail -n 1 ~/castle-src/systems/nest/castle.ts"]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe("// note\n");
    expect(again.stderr).toMatch(/^castle: warning: ~\/castle-src holds your edits of commit [0-9a-f]{12}; this run is commit [0-9a-f]{12}/m);
  });

  it("a remote cache set on the host is usable inside: settings pass in, credentials when asked", async () => {
    const s3 = await startS3Server("castle");
    try {
      const settings = { AWS_ENDPOINT_URL: s3.endpoint, AWS_REGION: "us-east-1" };
      const secrets = { AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey };
      // Another machine built a variant of the system and shared it; this one never built it.
      const remoteDef = definitionDir(world, world.dir("remote-def"), "from the remote");
      const ci = world.home("ci");
      const shared = await ci.run(["build", remoteDef, "--plain", "--export-cache", "s3://castle/inside"], { env: { ...settings, ...secrets } });
      expect(shared.code, shared.stderr).toBe(0);

      const script = "echo ${AWS_SECRET_ACCESS_KEY:-no secret} $CASTLE_IMPORT_CACHE; castle run /defs/remote --plain -- cat /etc/motd";
      const args = ["--import-cache", "s3://castle/inside", "--mount", `${remoteDef}:/defs/remote:ro`];
      const withSecrets = await home.run(["run", def, ...args, "-e", "AWS_ACCESS_KEY_ID", "-e", "AWS_SECRET_ACCESS_KEY", "--", "/bin/sh", "-c", script], {
        env: { ...settings, ...secrets }, timeoutMs: 120_000,
      });
      expect(withSecrets.code, withSecrets.stderr).toBe(0);
      expect(withSecrets.stdout).toBe(`${secrets.AWS_SECRET_ACCESS_KEY} s3://castle/inside\nfrom the remote\n`);
      expect(withSecrets.stderr).toMatch(/^\[\s*\d+\/\d+\] pulled motd \(/m);
      expect(withSecrets.stderr).toMatch(/^\[\s*\d+\/\d+\] cached base$/m); // from the outer store

      const withoutSecrets = await home.run(["run", def, ...args, "--ephemeral", "--", "/bin/sh", "-c", script], { env: { ...settings, ...secrets }, timeoutMs: 120_000 });
      expect(withoutSecrets.code, withoutSecrets.stderr).toBe(0);
      // No secret went in; with none found, Castle asks unsigned (as for a public bucket, which
      // s3rver accepts), so the remote still serves the layer.
      expect(withoutSecrets.stdout).toBe("no secret s3://castle/inside\nfrom the remote\n");
      expect(withoutSecrets.stderr).toMatch(/^\[\s*\d+\/\d+\] pulled motd \(/m);
    } finally {
      await s3.dispose();
    }
  });

  it("trusted keys from the host's config file reach a Castle inside; host paths of settings do not", async () => {
    const { publicKey } = generateKeyPairSync("ed25519");
    const raw = Buffer.from(publicKey.export({ format: "jwk" }).x as string, "base64url").toString("base64");
    const trusted = `team-ci:${raw}`;
    const config = join(world.dir("config"), "config.json");
    writeFileSync(config, JSON.stringify({ "cache.trustedKeys": [trusted] }));
    const script = 'echo "$CASTLE_TRUSTED_KEYS"; echo "${CASTLE_CONFIG:-no config path}"; castle config | grep trustedKeys';
    const r = await home.run(["run", def, "--ephemeral", "--", "/bin/sh", "-c", script], { env: { CASTLE_CONFIG: config } });
    expect(r.code, r.stderr).toBe(0);
    const [keys, configPath, shown] = r.stdout.split("\n");
    expect(keys).toBe(trusted);
    expect(configPath).toBe("no config path");
    expect(shown).toContain(trusted);
    expect(shown).toMatch(/CASTLE_TRUSTED_KEYS/);
  });

  it("ps, exec and kill work at every level, with instance ids", async () => {
    // The outer system outlives the inner one (until it is killed too), so nothing ends under `castle kill`.
    const outer = home.start(["run", def, "--ephemeral", "--", "/bin/sh", "-c", "castle run --ephemeral -- sleep 300; echo inner ended $?; exec sleep 300"]);
    background.push(outer);
    let outerId = "";
    let innerId = "";
    for (let i = 0; i < 300 && !innerId; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const ps = JSON.parse((await home.run(["ps", "--json"])).stdout || "[]") as { id: string; command: string[] }[];
      outerId = ps.find((e) => e.command.join(" ").includes("castle run --ephemeral"))?.id ?? "";
      if (!outerId) continue;
      const inner = await home.run(["exec", outerId, "--", "castle", "ps", "--json"]);
      innerId = (JSON.parse(inner.stdout || "[]") as { id: string }[])[0]?.id ?? "";
    }
    expect(innerId, `${outer.stdout}${outer.stderr}`).toMatch(/^nest-[0-9a-f]{6}\.e$/);
    const ran = await home.run(["exec", outerId, "--", "castle", "exec", innerId, "--", "sh", "-c", "cat /etc/motd; echo $CASTLE_INSIDE | grep -o '\"instance\":\"[^\"]*\"'"]);
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toBe(`outer motd\n"instance":"${innerId}"\n`);
    const killed = await home.run(["exec", outerId, "--", "castle", "kill", innerId]);
    expect(killed.code, killed.stderr).toBe(0);
    expect(killed.stdout).toBe(`${innerId}\n`);
    await outer.waitFor(/^inner ended 143$/m);
    const innerPs = await home.run(["exec", outerId, "--", "castle", "ps"]);
    expect(innerPs.stdout).toBe("ID  SYSTEM  PID  AGE  COMMAND\n");
    const outerKilled = await home.run(["kill", outerId]);
    expect(outerKilled.code, outerKilled.stderr).toBe(0);
    expect((await outer.exited).code).toBe(143);
  });
});
