// `castle run <git-url|dir> [branch] [subdir]` from git: a local repository with branch and subdir
// selection, and a real `git http-backend` on loopback — where a second run of an unmoved branch
// only re-resolves the ref (no objects fetched, nothing built), a moved branch is fetched again,
// and --offline works with the server gone. Errors: missing branch, missing subdir, bad URLs.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGitServer } from "../../packages/graph/test/helpers/git-server";
import { startHttpServer, type TestServer } from "../../packages/graph/test/helpers/http-server";
import { commitAll, git, initRepo } from "./helpers/cli-git";
import { CliWorld, cliMissing, definition, writeFiles, type CliHome } from "./helpers/cli-harness";

const skip = cliMissing();
if (skip) console.warn(`skipping cli-git: ${skip}`);

describe.skipIf(skip)("castle run from git", () => {
  let world: CliWorld;
  let home: CliHome;
  let repo: string;
  let server: TestServer | undefined;
  let url: string;

  const demo = (rootfs: string, text: string) =>
    definition(
      rootfs,
      `const motd = layer({ name: "motd", runDeps: [base], script: ${JSON.stringify(`mkdir -p /etc && echo '${text}' > /etc/motd`)} });
export default system({ name: "gitdemo", layers: [motd], entrypoint: ["/bin/cat", "/etc/motd"] });`,
    );

  beforeAll(async () => {
    world = CliWorld.create();
    home = world.home();
    repo = world.dir("repo");
    initRepo(repo);
    writeFiles(repo, { "castle.ts": demo(world.rootfs, "top of main"), "systems/demo/castle.ts": demo(world.rootfs, "main branch") });
    commitAll(repo, "main");
    git(repo, "checkout", "-q", "-b", "dev");
    writeFiles(repo, { "systems/demo/castle.ts": demo(world.rootfs, "dev branch"), "systems/empty/README": "no castle.ts here\n" });
    commitAll(repo, "dev");
    git(repo, "checkout", "-q", "main");
    // The http server serves a bare clone, as a forge would.
    const served = world.dir("served");
    git(served, "clone", "-q", "--bare", repo, "defs.git");
    server = await startGitServer(served);
    url = `${server.url}/defs.git`;
  });
  afterAll(async () => {
    await server?.close();
    world?.dispose("cli-git");
  });

  it("runs a branch and subdir of a local repository", async () => {
    const dev = await home.run(["run", repo, "dev", "systems/demo"]);
    expect(dev.stdout).toBe("dev branch\n");
    expect(dev.code).toBe(0);
    const main = await home.run(["run", repo, "main", "systems/demo"]);
    expect(main.stdout).toBe("main branch\n");
    // A file:// URL with no branch: the repository's HEAD, castle.ts at the top.
    const top = await home.run(["run", `file://${repo}`]);
    expect(top.stdout).toBe("top of main\n");
    expect(top.code).toBe(0);
  });

  it("uses what is committed, not the work tree", async () => {
    writeFileSync(join(repo, "systems/demo/castle.ts"), demo(world.rootfs, "uncommitted"));
    const r = await home.run(["run", repo, "main", "systems/demo"]);
    expect(r.stdout).toBe("main branch\n");
    git(repo, "checkout", "--", ".");
  });

  it("fetches over http, then only re-resolves the branch while it does not move", async () => {
    // A store of its own: checkouts are cached by commit, so one made from the local repository
    // above would spare this run its fetch.
    home = world.home("http-home");
    const first = await home.run(["run", url, "main", "systems/demo", "--plain"]);
    expect(first.stdout).toBe("main branch\n");
    expect(first.code).toBe(0);
    expect(server!.requests.some((path) => path.endsWith("/git-upload-pack"))).toBe(true);

    const mark = server!.requests.length;
    const second = await home.run(["run", url, "main", "systems/demo", "--plain"]);
    expect(second.stdout).toBe("main branch\n");
    const since = server!.requests.slice(mark);
    expect(since.length).toBeGreaterThan(0); // the branch is resolved again...
    expect(since.every((path) => path.includes("/info/refs"))).toBe(true); // ...but no objects are fetched
    expect(second.stderr).not.toMatch(/building|pulling/); // and nothing is built
    expect(second.stderr).toBe("");
  });

  it("fetches again when the branch moves", async () => {
    writeFiles(repo, { "systems/demo/castle.ts": demo(world.rootfs, "main moved") });
    commitAll(repo, "move main");
    git(join(world.base, "served/defs.git"), "fetch", "-q", repo, "+main:main");
    const mark = server!.requests.length;
    const r = await home.run(["run", url, "main", "systems/demo", "--plain"]);
    expect(r.stdout).toBe("main moved\n");
    expect(server!.requests.slice(mark).some((path) => path.endsWith("/git-upload-pack"))).toBe(true);
    expect(r.stderr).toMatch(/building motd/);
  });

  it("--offline uses the cached checkout with the server stopped", async () => {
    await server!.close();
    server = undefined;
    const r = await home.run(["run", url, "main", "systems/demo", "--offline"]);
    expect(r.stdout).toBe("main moved\n");
    expect(r.code).toBe(0);
    // Without --offline the branch cannot be resolved: a fetch error (4), one line and a hint.
    const online = await home.run(["run", url, "main", "systems/demo"]);
    expect(online.code).toBe(4);
    expect(online.stderr).toMatch(/^castle: cannot fetch http:\/\/127\.0\.0\.1:\d+\/defs\.git.*\nhint: /);
    // A branch never fetched has nothing cached.
    const never = await home.run(["run", url, "dev", "systems/demo", "--offline"]);
    expect(never.code).toBe(4);
    expect(never.stderr).toMatch(/^castle: --offline: .* was never fetched\nhint: run once without --offline\n$/);
  });

  it("names the branches when the one asked for is missing", async () => {
    const r = await home.run(["run", repo, "nope"]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^castle: .* has no branch or tag nope \(it has: dev, main\)\n/);
    expect(r.stderr.split("\n").filter(Boolean).length).toBeLessThanOrEqual(2);
  });

  it("reports a missing subdir or a subdir without castle.ts as definition errors (3)", async () => {
    const missing = await home.run(["run", repo, "dev", "systems/nope"]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/^castle: .* has no directory systems\/nope\n/);
    const empty = await home.run(["run", repo, "dev", "systems/empty"]);
    expect(empty.code).toBe(3);
    expect(empty.stderr).toMatch(/^castle: no castle\.ts in .*systems\/empty\n/);
  });

  it("reports unreachable and malformed URLs as one line", async () => {
    const refused = await home.run(["run", "http://127.0.0.1:9/nothing.git"]);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/^castle: cannot fetch http:\/\/127\.0\.0\.1:9\/nothing\.git/);
    expect(refused.stderr).not.toMatch(/internal error|\n\s+at /);
    const neverFetched = await home.run(["run", "http://127.0.0.1:9/nothing.git", "--offline"]);
    expect(neverFetched.code).toBe(4);
    const scheme = await home.run(["run", "ftp://example.invalid/repo.git"]);
    expect(scheme.code).not.toBe(0);
    expect(scheme.stderr).toMatch(/^castle: /);
    expect(scheme.stderr).not.toMatch(/internal error/);
    const notRepo = await home.run(["run", world.rootfs, "main"]);
    expect(notRepo.code).toBe(4);
    expect(notRepo.stderr).toMatch(/^castle: .*is not a git repository/);
  });

  it("says in words that a URL has no repository behind it (404, or a web page)", async () => {
    const web = await startHttpServer((req, res) => {
      res.statusCode = req.url?.startsWith("/missing") ? 404 : 200;
      res.setHeader("content-type", "text/html");
      res.end("<html><body>Sign in to continue</body></html>");
    });
    try {
      const missing = await home.run(["run", `${web.url}/missing/repo.git`]);
      expect(missing.code).toBe(4);
      expect(missing.stderr).toMatch(/^castle: cannot fetch http:\/\/\S+\/missing\/repo\.git: there is no repository there \(HTTP 404 Not Found\)\nhint: check the URL: it is the repository's clone URL/);
      const page = await home.run(["run", `${web.url}/team/project`]);
      expect(page.code).toBe(4);
      expect(page.stderr).toMatch(/^castle: cannot fetch \S+: it did not answer as a git repository \(it sent "<html><body>Sign in to continue<\/body><\/html>"\)$/m);
      expect(page.stderr).not.toMatch(/SmartHttpError|001e# service/);
    } finally {
      await web.close();
    }
  });

  it("reports a repository that is not there", async () => {
    const r = await home.run(["run", join(world.base, "missing-repo"), "main"]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^castle: .*missing-repo/);
  });
});
