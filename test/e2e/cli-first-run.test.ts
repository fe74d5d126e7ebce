// A newcomer's first cold `castle run <git-url>` through the bundled binary as uid 65534: the
// definition is cloned from a real `git http-backend` on loopback and its source is downloaded
// from a loopback http server, both throttled to ~400 kB/s. On a real pseudo-terminal the screen must
// change from the first second to the command's output, never standing still for more than a
// second (sampled from the pty), and show the clone, the download (bytes and rate) and what was
// fetched in the summary; with --plain the download is printed as it starts and counted at the
// end.

import { execFileSync } from "node:child_process";
import { request, type ServerResponse } from "node:http";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGitServer } from "../../packages/graph/test/helpers/git-server";
import { startHttpServer, type TestServer } from "../../packages/graph/test/helpers/http-server";
import { commitAll, git, initRepo } from "./helpers/cli-git";
import { CliWorld, cliMissing, definition, writeFiles } from "./helpers/cli-harness";
import { scriptMissing, Terminal } from "./helpers/cli-pty";

const skip = cliMissing();
if (skip) console.warn(`skipping cli-first-run: ${skip}`);
const noPty = scriptMissing();
if (!skip && noPty) console.warn(`skipping the pseudo-terminal first-run test: ${noPty}`);

/** Bytes per second the source is served at, in 16 kB pieces. */
const RATE = 400_000;
const PIECE = 16_384;

/** Writes body to res at RATE, in PIECE-sized writes. */
function sendSlowly(res: ServerResponse, pieces: AsyncIterable<Buffer> | Buffer[]): void {
  const queue: Buffer[] = [];
  let ended = false;
  const timer = setInterval(() => {
    let budget = PIECE;
    while (budget > 0 && queue.length > 0) {
      const head = queue[0]!;
      const part = head.subarray(0, budget);
      res.write(part);
      budget -= part.length;
      if (part.length === head.length) queue.shift();
      else queue[0] = head.subarray(part.length);
    }
    if (ended && queue.length === 0) {
      clearInterval(timer);
      res.end();
    }
  }, Math.round((1000 * PIECE) / RATE));
  res.on("close", () => clearInterval(timer));
  void (async () => {
    for await (const piece of pieces) queue.push(piece);
    ended = true;
  })();
}

/** A loopback proxy to `target` that sends every response body at RATE. */
function throttledProxy(target: TestServer): Promise<TestServer> {
  return startHttpServer((req, res) => {
    const upstream = request(`${target.url}${req.url}`, { method: req.method, headers: req.headers }, (reply) => {
      const headers = { ...reply.headers };
      res.writeHead(reply.statusCode ?? 502, headers);
      sendSlowly(res, reply);
    });
    req.pipe(upstream);
  });
}

describe.skipIf(skip)("a first cold run", () => {
  let world: CliWorld;
  let gitServer: TestServer;
  let slowGit: TestServer;
  let files: TestServer;
  let url: string;

  beforeAll(async () => {
    world = CliWorld.create();
    // A 1.2 MB source archive (random bytes do not compress), served slowly.
    const content = world.dir("content/app-1.0");
    writeFileSync(join(content, "data.bin"), randomBytes(1_200_000));
    const tarball = join(world.base, "app-1.0.tar.gz");
    execFileSync("tar", ["-czf", tarball, "-C", join(world.base, "content"), "app-1.0"]);
    const body = readFileSync(tarball);
    const sha256 = createHash("sha256").update(body).digest("hex");
    files = await startHttpServer((_req, res) => {
      res.setHeader("content-length", body.length);
      sendSlowly(res, [body]);
    });
    // The repository carries 400 kB of data too, so that its clone takes about a second.
    const repo = world.dir("repo");
    initRepo(repo);
    writeFileSync(join(repo, "blob.bin"), randomBytes(400_000));
    writeFiles(repo, {
      "castle.ts": definition(
        world.rootfs,
        `const app = layer({
  name: "app",
  runDeps: [base],
  mounts: { "/src": source.http({ name: "app-src", url: "${files.url}/app-1.0.tar.gz", sha256: "${sha256}" }) },
  script: "for i in 1 2 3 4; do echo compiling part $i; sleep 0.4; done; mkdir -p /opt && cp /src/data.bin /opt/",
});
export default system({ name: "first", layers: [app], entrypoint: ["/bin/sh"] });`,
      ),
    });
    commitAll(repo, "first");
    const served = world.dir("served");
    mkdirSync(served, { recursive: true });
    git(served, "clone", "-q", "--bare", repo, "first.git");
    gitServer = await startGitServer(served);
    slowGit = await throttledProxy(gitServer);
    url = `${slowGit.url}/first.git`;
  });
  afterAll(async () => {
    await Promise.all([slowGit?.close(), gitServer?.close(), files?.close()]);
    world?.dispose("cli-first-run");
  });

  it.skipIf(noPty)("changes the screen from the first second to the command's output, never still for a second", async () => {
    // What starting any Node program on this pty costs right now (the machine's load included):
    // Castle's first second is counted after it.
    const home = world.home("tty");
    const baseline = new Terminal(home, [], { program: [process.execPath, "-e", "process.stdout.write('node-started')"] });
    await baseline.status();
    const nodeStartMs = baseline.chunks[0]!.at - baseline.startedAt;
    const term = new Terminal(home, ["run", url, "main", "--", "/bin/echo", "shell-ready"]);
    try {
      expect(await term.status(60_000)).toBe(0);
    } finally {
      term.kill();
    }
    const end = term.chunks.findIndex((chunk) => chunk.text.includes("shell-ready"));
    expect(end, term.text).toBeGreaterThan(0);
    const times = [term.startedAt, ...term.chunks.slice(0, end + 1).map((chunk) => chunk.at)];
    const gaps = times.slice(1).map((at, i) => at - times[i]!);
    const total = times[times.length - 1]! - term.startedAt;
    const longest = Math.max(...gaps.slice(1));
    console.log(
      `[first-run] ${term.chunks.length} pieces of output over ${total} ms; first after ${gaps[0]} ms ` +
        `(starting node here: ${nodeStartMs} ms); longest gap after that ${longest} ms`,
    );
    expect(total).toBeGreaterThan(3000); // the download alone takes ~3 s: the samples mean something
    expect(gaps[0]! - nodeStartMs).toBeLessThan(1000);
    expect(longest).toBeLessThan(1000);
    const text = term.text;
    expect(text).toMatch(/repository first\s+\d+\.\ds\s+cloning \d+\.\d kB\s+\d+(\.\d)? kB\/s/);
    expect(text).toMatch(/app-src\s+\d+\.\ds\s+downloading \d+\.\d\/1\.2 MB \d+%\s+\d+(\.\d)? kB\/s/);
    expect(text).toMatch(/app\s+\d+\.\ds\s+compiling part \d/);
    // The repository and the archive: 0.4 + 1.2 MB.
    expect(text).toMatch(/done: 2 layers \(2 built, 0 pulled, 0 cached\) in \d+\.\ds\n+fetched 2 sources \(1\.6 MB\)/);
  });

  it("prints the download with --plain as it starts, and counts it at the end", async () => {
    const r = await world.home("plain").run(["run", url, "main", "--plain", "--", "/bin/echo", "shell-ready"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("shell-ready\n");
    const lines = r.stderr.trim().split("\n");
    expect(lines[0]).toMatch(/^cloning repository first \d/);
    expect(lines).toContain("downloading app-src 0.0/1.2 MB");
    expect(lines).toEqual(expect.arrayContaining([expect.stringMatching(/^downloading app-src \d\.\d\/1\.2 MB \(\d+(\.\d)? kB\/s\)$/)]));
    expect(lines).toEqual(expect.arrayContaining([expect.stringMatching(/^fetched app-src \(1\.2 MB in \d\.\ds\)$/)]));
    expect(lines).toEqual(expect.arrayContaining([expect.stringMatching(/^fetched repository first \(40\d\.\d kB in \d\.\ds\)$/)]));
    expect(lines.at(-1)).toMatch(/^done: 2 layers \(2 built, 0 pulled, 0 cached\) in \d+\.\ds; fetched 2 sources \(1\.6 MB\)$/);
  });
});
