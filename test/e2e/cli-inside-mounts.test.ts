// Host files and names inside a system, through the bundled binary as uid 65534:
// - `castle run --mount HOST:GUEST[:ro]`: a read-write directory (writes reach the host), a
//   read-only one, a single file; no mount point is written into the system's files;
// - with the host's network, names resolve inside: `localhost` and this machine's name, through
//   the host's /etc/hosts and /etc/resolv.conf (bound read-only unless the system ships its own);
// - bad --mount input: a missing host path, a relative guest path, a guest path over /proc, one
//   over Castle's own mounts — each a clear usage error (exit 2), before anything is built, with
//   the system's files kept.

import { createServer, type Server } from "node:http";
import { lookup } from "node:dns/promises";
import { readdirSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliWorld, cliMissing, definition, giveToUser, type CliHome } from "./helpers/cli-harness";

const skip = cliMissing();
if (skip) console.warn(`skipping cli-inside-mounts: ${skip}`);

describe.skipIf(skip)("host files and names inside a system", () => {
  let world: CliWorld;
  let home: CliHome;
  let def: string;
  let shared: string;
  const inside = (script: string, args: string[] = []) => home.run(["run", def, ...args, "--", "/bin/sh", "-c", script]);

  beforeAll(async () => {
    world = CliWorld.create();
    home = world.home();
    def = world.dir("def", {
      "castle.ts": definition(world.rootfs, `export default system({ name: "mounts", layers: [base] });`),
    });
    shared = world.dir("shared", { "hello.txt": "from the host\n", "config.ini": "answer=42\n" });
    giveToUser(shared);
    const built = await home.run(["build", def]);
    expect(built.code, built.stderr).toBe(0);
  });
  afterAll(() => world?.dispose("cli-inside-mounts"));

  it("binds host directories read-write and read-only, and single files", async () => {
    const readonly = world.dir("readonly", { "data.txt": "read me\n" });
    const r = await inside(
      [
        "cat /work/hello.txt && echo 'from inside' > /work/made-inside.txt",
        "cat /ro/data.txt && (echo x > /ro/data.txt) 2>&1",
        "cat /etc/app.ini",
      ].join("\n"),
      ["--mount", `${shared}:/work`, "--mount", `${readonly}:/ro:ro`, "--mount", `${join(shared, "config.ini")}:/etc/app.ini:ro`],
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^from the host\nread me\n.*Read-only file system\nanswer=42\n$/s);
    expect(readFileSync(join(shared, "made-inside.txt"), "utf8")).toBe("from inside\n");
    expect(readFileSync(join(readonly, "data.txt"), "utf8")).toBe("read me\n");
    // The mount points came from Castle's bottom layer, not the system's upper dir.
    const upper = join(home.dataDir, "systems/mounts/upper");
    expect(readdirSync(upper)).toEqual([]);
  });

  describe("names", () => {
    let server: Server;
    let port = 0;
    let hostAddress: string | undefined;
    beforeAll(async () => {
      // Listens where this machine's name resolves on the host (loopback on most machines).
      hostAddress = await lookup(hostname(), { family: 4 }).then((r) => r.address, () => undefined);
      server = createServer((_req, res) => res.end("answered\n"));
      await new Promise<void>((resolve) => server.listen(0, hostAddress?.startsWith("127.") ? hostAddress : "127.0.0.1", resolve));
      port = (server.address() as { port: number }).port;
    });
    afterAll(() => new Promise<void>((resolve) => server?.close(() => resolve())));

    it("resolves localhost and the host's name inside, through the host's files", async (ctx) => {
      const r = await inside(`wget -q -O - http://localhost:${port}/ && cat /etc/resolv.conf | grep -c nameserver`);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^answered\n[1-9]\d*\n$/);
      if (!hostAddress?.startsWith("127.")) {
        console.warn(`skipped the host-name half: ${hostname()} does not resolve to a loopback address here (${hostAddress ?? "not at all"})`);
        ctx.skip();
      }
      const named = await inside(`wget -q -O - http://${hostname()}:${port}/`);
      expect(named.code, named.stderr).toBe(0);
      expect(named.stdout).toBe("answered\n");
    });

    it("keeps the system's own /etc/hosts, and binds nothing without the host's network", async () => {
      const own = world.dir("own-hosts", {
        "rootfs-etc/etc/hosts": "127.0.0.1 localhost only-in-the-system\n",
        "castle.ts": definition(
          world.rootfs,
          `const etc = layer.import({ name: "etc", from: source.local(${JSON.stringify(join(world.base, "own-hosts/rootfs-etc"))}) });
export default system({ name: "own-hosts", layers: [base, etc] });`,
        ),
      });
      const r = await home.run(["run", own, "--", "/bin/sh", "-c", "cat /etc/hosts"]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe("127.0.0.1 localhost only-in-the-system\n");
      const none = await inside("ls /etc/resolv.conf /etc/hosts 2>&1; true", ["--network", "none"]);
      expect(none.stdout).toMatch(/resolv\.conf: No such file or directory/);
    });
  });

  describe("bad --mount input: a clear error (exit 2) before anything is built, nothing lost", () => {
    beforeAll(async () => {
      const r = await inside("echo kept > /root/notes.txt");
      expect(r.code, r.stderr).toBe(0);
    });
    const refused = async (mount: string, message: RegExp) => {
      const r = await inside("echo ran", ["--mount", mount]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(/^hint: see `castle run --help`$/m);
      expect(readFileSync(join(home.dataDir, "systems/mounts/upper/root/notes.txt"), "utf8")).toBe("kept\n");
    };

    it("a host path that does not exist", () =>
      refused(`${world.base}/missing:/data`, /^castle: --mount \S+\/missing:\/data: \S+\/missing does not exist on the host/m));
    it("a relative guest path", () => refused(`${shared}:data`, /^castle: --mount \S+:data: the guest path data must be absolute/m));
    it("a guest path over /proc", () => refused(`${shared}:/proc/sys`, /^castle: --mount \S+:\/proc\/sys: \/proc\/sys is the sandbox's own \/proc/m));
    it("a guest path over Castle's own mounts", () =>
      refused(`${shared}:/root/src`, /^castle: --mount \S+:\/root\/src: \/root\/src overlaps \/root\/src, the system's edited sources/m));
    it("a malformed one", () => refused(`${shared}:/data:rx`, /^castle: --mount \S+:\/data:rx: unknown option "rx"/m));
  });

  it("a mount given twice is refused too", async () => {
    const r = await inside("true", ["--mount", `${shared}:/data`, "--mount", `${shared}/:/data/`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/\/data is already the target of --mount/);
  });
});
