// Castle inside a Castle system, through the bundled binary as uid 65534: a layer imports a kit
// (this machine's node with the shared libraries it needs, the CLI bundle, esbuild) and an inner
// definition; inside the running system, `castle run` builds and runs the inner system, with its
// exit status passed out through both. The inner Castle keeps its store where `castle run` puts
// it by default for nested use (/var/lib/castle, a directory of the host's filesystem bound in):
// overlayfs refuses an upper dir on overlayfs, which is what the system's root is.

import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliWorld, ROOT, cliMissing, definition, writeFiles, type CliHome } from "./helpers/cli-harness";

/** The shared libraries (and loader) an executable needs, by absolute path; [] if static. */
function sharedLibraries(executable: string): string[] | string {
  try {
    const out = execFileSync("ldd", [executable], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return [...out.matchAll(/(\/\S+\.so[.\d]*)/g)].map((m) => m[1]!);
  } catch (error) {
    const text = String((error as { stdout?: string }).stdout ?? "");
    return /not a dynamic executable/.test(text) ? [] : `cannot list node's shared libraries with ldd: ${(error as Error).message}`;
  }
}

const libraries = sharedLibraries(process.execPath);
const skip = cliMissing() ?? (typeof libraries === "string" ? libraries : undefined);
if (skip) console.warn(`skipping cli-nested: ${skip}`);

/** Inside the outer system nothing needs setting up: the defaults of `castle run` suffice. */
const INNER_ENV = "";
const INNER_CASTLE = "node /opt/castle/dist/castle.cjs";

describe.skipIf(skip)("castle inside a castle system", () => {
  let world: CliWorld;
  let home: CliHome;
  let outer: string;

  beforeAll(() => {
    world = CliWorld.create();
    home = world.home();
    // The kit: node at /usr/bin/node with its libraries at their host paths, Castle's bundle with
    // the one package it loads from node_modules (esbuild, for castle.ts), and an inner definition.
    const kit = world.dir("kit");
    const copy = (from: string, to: string) => {
      mkdirSync(dirname(join(kit, to)), { recursive: true });
      cpSync(from, join(kit, to), { recursive: true, dereference: true });
    };
    copy(process.execPath, "usr/bin/node");
    for (const lib of libraries as string[]) copy(lib, lib);
    copy(dirname(world.castle), "opt/castle/dist");
    copy(join(ROOT, "node_modules/esbuild"), "opt/castle/node_modules/esbuild");
    const platform = join(ROOT, `node_modules/@esbuild/${process.platform}-${process.arch}`);
    if (existsSync(platform)) copy(platform, `opt/castle/node_modules/@esbuild/${process.platform}-${process.arch}`);
    copy(world.rootfs, "inner/rootfs");
    writeFiles(kit, {
      "inner/castle.ts": `import { layer, source, system } from "castle";
const base = layer.import({ name: "base", from: source.local("./rootfs") });
const hi = layer({ name: "hi", runDeps: [base], script: "mkdir -p /etc && echo hello from the inner system > /etc/motd" });
export default system({ name: "inner", layers: [hi], entrypoint: ["/bin/cat", "/etc/motd"] });
`,
    });
    outer = world.dir("outer", {
      "castle.ts": definition(
        world.rootfs,
        `const kit = layer.import({ name: "castle-kit", from: source.local(${JSON.stringify(kit)}) });
export default system({ name: "outer", layers: [base, kit] });`,
      ),
    });
  });
  afterAll(() => world?.dispose("cli-nested"));

  it("builds and runs a system from inside one", async (ctx) => {
    const r = await home.run(["run", outer, "--", "/bin/sh", "-c", `${INNER_ENV} ${INNER_CASTLE} run /inner --plain`], { timeoutMs: 90_000 });
    const cannotNest = /user namespace|CLONE_NEWUSER|unshare|uid_map/i;
    if (r.code !== 0 && cannotNest.test(r.stderr)) {
      console.warn(`skipped: user namespaces cannot nest here: ${r.stderr.trim().split("\n").find((l) => cannotNest.test(l))}`);
      ctx.skip();
    }
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("hello from the inner system\n");
    expect(r.stderr).toMatch(/^building hi \(new\)$/m); // the inner castle's plain progress
    expect(r.stderr).toMatch(/^done: 2 layers \(2 built, 0 pulled, 0 cached\)/m);
  });

  it("passes the inner command's exit status out through both", async () => {
    const r = await home.run(["run", outer, "--", "/bin/sh", "-c", `${INNER_ENV} ${INNER_CASTLE} run /inner -- sh -c 'exit 42'`]);
    expect(r.code, r.stderr).toBe(42);
  });

  it("says clearly why a store on the system's overlay root cannot build", async () => {
    // A store moved onto the outer overlayfs root (not the default) cannot hold build uppers.
    const r = await home.run(["run", outer, "--ephemeral", "--", "/bin/sh", "-c", `CASTLE_CACHE_DIR=/root/store ${INNER_CASTLE} build /inner --plain`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not supported as upperdir/);
    expect(r.stderr).toMatch(/^full log: \/root\/store\/logs\/\S+\.log$/m);
  });
});
