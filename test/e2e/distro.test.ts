// examples/distro end to end, through the bundled `castle` binary as uid 65534, with the
// definition fetched from a git repository served over smart http on loopback
// (`castle run <url> main examples/distro`):
// - one cold build, exported to a real S3 server (s3rver on loopback), shared by every story;
// - the system: /bin/sh is busybox running on the built musl, and a C program compiles and runs
//   against that libc;
// - the inside story: in the running system, `castle edit musl-src`, patch _Exit.c, `castle run
//   ~/castle-src examples/distro` builds only musl's layers (the rest comes from the outer store)
//   and `sh -c 'exit 3'` prints RIP 3, its status passed out through both levels;
// - the patched-libc story: `castle source` → patch _Exit.c → CASTLE_OVERRIDE_musl_src rebuilds musl
//   and musl-dev only (everything else comes from the cache) and `sh -c 'exit 3'` prints RIP 3;
//   without the override the original layers come back from the cache at once; home files stay;
// - the remote cache story: a fresh store pulls every layer and builds nothing; then the patched
//   libc in another fresh store builds only musl (and its source layer) and musl-dev, and pulls
//   the rest.
// Needs a Debian mirror (CASTLE_DEBIAN_MIRROR or the host's apt sources): skips with the reason
// when it is unreachable. Prints its timings for the CI log.

import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startS3Server, type S3Server } from "../../packages/cache/test/helpers/s3-server";
import { startGitServer } from "../../packages/graph/test/helpers/git-server";
import type { TestServer } from "../../packages/graph/test/helpers/http-server";
import { commitAll, git, initRepo } from "./helpers/cli-git";
import { CliWorld, ROOT, cliMissing, runtimeMissing, type CliHome, type CliResult } from "./helpers/cli-harness";
import { debianMirrorProblem } from "./helpers/debian-mirror";

const skip = cliMissing() ?? (await debianMirrorProblem());
if (skip) console.warn(`skipping the distro e2e test: ${skip}`);

const MINUTE = 60_000;
/** The layers the running system is composed of, the ones only builds use, and all of them. */
const RUNTIME = ["busybox", "bzip2", "dropbear", "etc", "lua", "musl", "toolchain", "xz", "zlib"];
const SOURCES = ["busybox", "bzip2", "dropbear", "lua", "musl", "xz", "zlib"].map((p) => `${p}-source`);
const BUILD_ONLY = ["musl-dev", ...SOURCES].sort();
const ALL = [...RUNTIME, ...BUILD_ONLY].sort();
/** What a libc change that keeps musl's ABI rebuilds (its source, musl, musl-dev); the rest must come from a cache. */
const MUSL = ["musl", "musl-dev", "musl-source"];
const NOT_MUSL = RUNTIME.filter((n) => n !== "musl");

/** The README's patch: musl's _Exit prints `RIP <status>` on stderr through a raw write(2). */
const RIP_EXIT_C = readFileSync(join(ROOT, "examples/distro/patches/rip-exit.c"), "utf8");

/** Layer names by what happened to them, from `--plain` lines such as `[ 3/10] built musl in 4.0s`
 * (an import layer, whose source was fetched, says `imported`: counted as built). */
function outcomes(stderr: string): Record<"built" | "cached" | "pulled" | "skipped" | "failed", string[]> {
  const out = { built: [] as string[], cached: [] as string[], pulled: [] as string[], skipped: [] as string[], failed: [] as string[] };
  for (const m of stderr.matchAll(/^\[\s*\d+\/\d+\] (built|imported|cached|pulled|skipped|failed) ([\w.-]+)/gm)) {
    out[(m[1] === "imported" ? "built" : m[1]) as keyof typeof out].push(m[2]!);
  }
  for (const list of Object.values(out)) list.sort();
  return out;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

describe.skipIf(skip)("examples/distro", () => {
  let world: CliWorld;
  let s3: S3Server;
  let gitServer: TestServer | undefined;
  let repo: string;
  let home: CliHome;
  let muslDir: string;
  const s3url = "s3://castle/distro";
  let s3env: Record<string, string>;

  /** `castle args...` as uid 65534, with the S3 endpoint and the user's Debian mirror setting. */
  const castle = (who: CliHome, args: string[], env: Record<string, string> = {}, timeoutMs = 5 * MINUTE, input?: string): Promise<CliResult> => {
    const passed: Record<string, string> = {};
    for (const name of ["CASTLE_DEBIAN_MIRROR", "CASTLE_DEBIAN_SECURITY_MIRROR", "CASTLE_MIRRORS"]) {
      if (process.env[name]) passed[name] = process.env[name]!;
    }
    return who.run(args, { env: { ...passed, ...s3env, ...env }, timeoutMs, ...(input === undefined ? {} : { input }) });
  };
  const distro = () => [repo, "main", "examples/distro"];
  /** musl's source unpacked by `castle source` and patched with the RIP _Exit, made once, by
   * whichever test needs it first (each test must pass when run alone). */
  let patching: Promise<string> | undefined;
  const patchedMusl = () =>
    (patching ??= (async () => {
      const got = await castle(home, ["source", ...distro(), "--name", "musl-src", "--out", muslDir]);
      expect(got.code, got.stderr).toBe(0);
      writeFileSync(join(muslDir, "src/exit/_Exit.c"), RIP_EXIT_C);
      return muslDir;
    })());
  /** A file in the system's home (the first test writes it too), made once. */
  let noting: Promise<void> | undefined;
  const noteInHome = () =>
    (noting ??= (async () => {
      const wrote = await castle(home, ["run", ...distro(), "--", "sh", "-c", "echo keep-me > /root/notes.txt"]);
      expect(wrote.code, wrote.stderr).toBe(0);
    })());

  beforeAll(async () => {
    world = CliWorld.create();
    s3 = await startS3Server("castle");
    s3env = { AWS_ENDPOINT_URL: s3.endpoint, AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER", AWS_REGION: "us-east-1" };
    // The definition, committed to a git repository of its own (the checkout may not be readable
    // by uid 65534, and this is how a user runs it: castle run <repo> <branch> <subdir>).
    const work = world.dir("repo-work");
    cpSync(join(ROOT, "examples/distro"), join(work, "examples/distro"), { recursive: true });
    initRepo(work);
    commitAll(work, "distro");
    // Served as a forge would: a bare clone behind git's smart http backend on loopback.
    const served = world.dir("served");
    git(served, "clone", "-q", "--bare", work, "castle.git");
    gitServer = await startGitServer(served);
    repo = `${gitServer.url}/castle.git`;
    muslDir = join(world.ownedDir("work"), "musl");
    home = world.home("user");

    const cold = await castle(home, ["build", ...distro(), "--plain", "--json", "--export-cache", s3url], {}, 25 * MINUTE);
    expect(cold.code, cold.stderr.slice(-6000)).toBe(0);
    expect(outcomes(cold.stderr).built).toEqual(ALL);
    const pushed = [...cold.stderr.matchAll(/^pushed ([\w.-]+)/gm)].map((m) => m[1]!).sort();
    expect(pushed).toEqual(ALL);
    const report = JSON.parse(cold.stdout) as { layers: { name: string; bytes: number }[] };
    console.log(`[distro] cold build of ${ALL.length} layers, exported to S3: ${seconds(cold.ms)}`);
    console.log(`[distro] layer sizes: ${report.layers.map((l) => `${l.name} ${(l.bytes / 1e6).toFixed(2)} MB`).join(", ")}`);
  }, 30 * MINUTE);

  // Removing several GB of stores takes a while on a busy machine.
  afterAll(async () => {
    await gitServer?.close();
    await s3?.dispose();
    world?.dispose("distro");
  }, 5 * MINUTE);

  it("runs busybox's /bin/sh on the built musl, and compiles and runs a C program against it", async () => {
    const script = [
      "set -e",
      'echo "sh is $(readlink -f /bin/sh)"',
      "readelf -l /usr/bin/busybox | grep -o 'interpreter: [^]]*'",
      "/lib/ld-musl-x86_64.so.1 --list /usr/bin/busybox",
      "grep -o '/usr/lib/x86_64-linux-musl/libc.so' /proc/self/maps | head -n 1",
      `printf '#include <stdio.h>\\nint main(void) { puts("hello from musl"); return 0; }\\n' > /tmp/hello.c`,
      "musl-gcc -o /tmp/hello /tmp/hello.c",
      "/tmp/hello",
      "readelf -l /tmp/hello | grep -o 'interpreter: [^]]*'",
      "lua -e 'print(6 * 7)'",
      "echo round-trip | xz | xz -d",
      "echo round-trip | bzip2 | bzip2 -d",
      "dropbearkey -t ed25519 -f /tmp/key > /dev/null && echo dropbear-ok",
      // musl's own ldd (the toolchain's glibc one cannot read musl programs), and init's name.
      "echo ldd-start; ldd /tmp/hello; echo ldd-end",
      "ps -o pid,args | awk '$1 == 1'",
      "echo keep-me > /root/notes.txt",
    ].join("\n");
    const run = await castle(home, ["run", ...distro(), "--", "/bin/sh", "-c", script]);
    expect(run.code, run.stderr).toBe(0);
    const out = run.stdout;
    expect(out).toContain("sh is /usr/bin/busybox");
    expect(out).toContain("interpreter: /lib/ld-musl-x86_64.so.1\n");
    expect(out).toMatch(/libc\.so => \/lib\/ld-musl-x86_64\.so\.1/);
    expect(out).toContain("/usr/lib/x86_64-linux-musl/libc.so\n");
    expect(out).toContain("hello from musl\n");
    expect(out.match(/interpreter: \/lib\/ld-musl-x86_64\.so\.1/g)).toHaveLength(2);
    expect(out).toContain("42\n");
    expect(out.match(/^round-trip$/gm)).toHaveLength(2);
    expect(out).toContain("dropbear-ok\n");
    expect(out).toMatch(/ldd-start\n(\s+\S+ \(0x[0-9a-f]+\)\n)*\s+libc\.so => \/lib\/ld-musl-x86_64\.so\.1 \(0x[0-9a-f]+\)\n(\s+.*\n)*ldd-end/);
    expect(out).toMatch(/^\s*1 castle-init\s*$/m);
    // The prompt says # for root: \$ reaches the shell's prompt expansion (it is root inside).
    const prompt = await castle(home, ["run", ...distro(), "--", "/bin/sh", "-il"], {}, 5 * MINUTE, "exit\n");
    expect(prompt.stdout, prompt.stderr).toMatch(/castle-distro:~# /); // busybox ash prompts on stdout without a tty

    const warm = await castle(home, ["run", ...distro(), "--", "true"]);
    expect(warm.code, warm.stderr).toBe(0);
    expect(warm.stderr).toBe("");
    console.log(`[distro] warm castle run (everything cached): ${seconds(warm.ms)}`);
  });

  it.skipIf(runtimeMissing())("inside the system: castle edit musl-src, patch, castle run ~/castle-src builds only musl's layers; RIP 3 through both levels", async () => {
    const story = [
      "castle --version",
      "ls ~/castle-src/examples/distro | grep -c castle.ts",
      "castle edit musl-src",
      "cp ~/castle-src/examples/distro/patches/rip-exit.c ~/src/musl-src/src/exit/_Exit.c",
      "castle run ~/castle-src examples/distro --plain -- sh -c 'exit 3'",
    ].join("\n");
    const run = await castle(home, ["run", ...distro(), "--", "/bin/sh", "-c", story]);
    expect(run.code, run.stderr.slice(-4000)).toBe(3);
    expect(run.stdout).toMatch(/^castle \d+\.\d+\.\d+\n1\n\/root\/src\/musl-src\n$/);
    expect(run.stderr).toMatch(/^castle: every build in this system now uses \/root\/src\/musl-src for musl-src/m);
    expect(run.stderr).toMatch(/^RIP 3$/m);
    const inner = outcomes(run.stderr);
    expect(inner.built).toEqual(MUSL); // everything else came from the outer store
    expect(inner.cached).toEqual(NOT_MUSL);
    expect(inner.pulled).toEqual([]);
    expect(inner.failed).toEqual([]);
    // The edited tree is a directory of the system's state on the host, where the host can build with it.
    const hostTree = join(home.dataDir, "systems/distro/src/musl-src");
    expect(readFileSync(join(hostTree, "src/exit/_Exit.c"), "utf8")).toBe(RIP_EXIT_C);
    console.log(`[distro] inside: castle edit, patch and nested castle run to RIP 3: ${seconds(run.ms)}`);
  });

  it("patched libc: the override rebuilds musl (its source, musl, musl-dev) only, and every exit says RIP", async () => {
    await noteInHome();
    const patched = await castle(home, ["run", ...distro(), "--plain", "--", "sh", "-c", "cat /root/notes.txt; exit 3"], {
      CASTLE_OVERRIDE_musl_src: await patchedMusl(),
    });
    expect(patched.code, patched.stderr).toBe(3);
    expect(patched.stderr).toMatch(/^RIP 3$/m);
    expect(patched.stdout).toBe("keep-me\n");
    const seen = outcomes(patched.stderr);
    expect(seen.built).toEqual(MUSL);
    expect(seen.cached).toEqual(NOT_MUSL);
    expect(seen.failed).toEqual([]);
    console.log(`[distro] libc patch to a running system (musl + musl-dev rebuilt): ${seconds(patched.ms)}`);
  });

  it("without the override the original layers come back from the cache at once; home files stay", async () => {
    await noteInHome();
    const back = await castle(home, ["run", ...distro(), "--plain", "--", "sh", "-c", "cat /root/notes.txt; exit 3"]);
    expect(back.code, back.stderr).toBe(3);
    // A fully cached run prints no progress at all: nothing was built, nothing printed RIP.
    expect(back.stderr).toBe("");
    expect(back.stdout).toBe("keep-me\n");
    console.log(`[distro] back to the original libc (cached): ${seconds(back.ms)}`);
  });

  it("a fresh store pulls every layer from S3 and builds nothing; the patched libc then builds only musl and musl-dev", async () => {
    const puller = world.home("puller");
    const pulled = await castle(puller, ["run", ...distro(), "--plain", "--import-cache", s3url, "--", "sh", "-c", "exit 3"]);
    expect(pulled.code, pulled.stderr).toBe(3);
    expect(pulled.stderr).not.toMatch(/^RIP/m);
    const seen = outcomes(pulled.stderr);
    expect(seen.pulled).toEqual(RUNTIME);
    expect(seen.built).toEqual([]);
    expect(seen.skipped).toEqual(BUILD_ONLY); // not needed: nothing that uses them has to be built
    console.log(`[distro] pull of the whole system from S3 into an empty store, then run: ${seconds(pulled.ms)}`);

    const patcher = world.home("patcher");
    const patched = await castle(patcher, ["run", ...distro(), "--plain", "--import-cache", s3url, "--", "sh", "-c", "exit 3"], {
      CASTLE_OVERRIDE_musl_src: await patchedMusl(),
    }, 15 * MINUTE);
    expect(patched.code, patched.stderr).toBe(3);
    expect(patched.stderr).toMatch(/^RIP 3$/m);
    const after = outcomes(patched.stderr);
    expect(after.built).toEqual(MUSL);
    expect(after.pulled).toEqual(NOT_MUSL);
    console.log(`[distro] patched libc on an empty store with the S3 cache (musl built clean, rest pulled): ${seconds(patched.ms)}`);
  }, 20 * MINUTE);
});
