// Reliability: sources that cannot be had. Wrong checksums, downloads cut short or stalled,
// mirror lists whose first mirrors fail, git refs and commits that do not exist, overrides that
// point nowhere or name no source. Each must fail (or fall through to a good mirror) with a
// stable CASTLE_* code and a message naming the source and every URL tried, and leave nothing
// partial in the store: no record, no half download, nothing in tmp/. A local source holding
// setuid, setgid and sticky modes is imported with them, alike as root and as an unprivileged user.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore, type LocalStore } from "@castle/cache";
import { isCastleError } from "@castle/errors";
import { parseOverrides, realizeSource, source, type Source, type SourceContext } from "@castle/graph";
import { startGitServer } from "../../packages/graph/test/helpers/git-server";
import { refusedPort, startHttpServer, type TestServer } from "../../packages/graph/test/helpers/http-server";
import { cliMissing, describeRun, makeCliHome, runCastle } from "./helpers/cli";
import { useTempDirs, writeDefinition } from "./helpers/definitions";
import { craftTar } from "./helpers/tar-craft";
import { checkStore } from "./helpers/store-check";

const temp = useTempDirs("castle-rel-src");
const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");
const FILE = Buffer.from("the pinned file\n".repeat(4096));
const GOOD = sha256(FILE);
/** A source tarball holding a fifo: sources may only hold files, directories and symlinks. */
const FIFO_TAR = craftTar([{ name: "pkg/README", body: "hi\n" }, { name: "pkg/pipe", type: "6", mode: 0o644 }]);

let server: TestServer;
beforeAll(async () => {
  server = await startHttpServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (path.startsWith("/good/")) {
      res.setHeader("content-length", FILE.length);
      res.end(FILE);
    } else if (path.startsWith("/fifo/")) {
      res.end(FIFO_TAR);
    } else if (path.startsWith("/other/")) {
      res.end("some other file\n");
    } else if (path.startsWith("/truncated/")) {
      // Promises the whole file, sends half, then hangs up.
      res.setHeader("content-length", FILE.length);
      res.write(FILE.subarray(0, FILE.length / 2), () => res.destroy());
    } else if (path.startsWith("/error/")) {
      res.statusCode = 500;
      res.end("internal error");
    } else if (path.startsWith("/stall/")) {
      res.setHeader("content-length", FILE.length);
      res.write(FILE.subarray(0, 100));
    } else {
      res.statusCode = 404;
      res.end("not found");
    }
  });
});
afterAll(async () => {
  await server?.close();
});

function context(store: LocalStore, extra: Partial<SourceContext> = {}): SourceContext {
  return { store, overrides: new Map(), env: {}, timeoutMs: 5000, ...extra };
}

async function realizeFails(src: Source, store: LocalStore, extra: Partial<SourceContext> = {}) {
  let thrown: unknown;
  try {
    await realizeSource(src, context(store, extra));
  } catch (error) {
    thrown = error;
  }
  expect(isCastleError(thrown), `expected a CastleError, got ${String(thrown)}`).toBe(true);
  // Nothing partial: no record, no tree, nothing in tmp/ or downloads/.
  expect(checkStore(store.root).problems).toEqual([]);
  expect(store.records()).toEqual([]);
  return thrown as Error & { code: string; data: Record<string, unknown> };
}

describe("sources: http", () => {
  it("refuses a file whose sha256 is not the pinned one, saying both digests", async () => {
    const store = openStore(temp("store"));
    const src = source.http({ url: `${server.url}/other/pkg-1.0.bin`, sha256: GOOD });
    const error = await realizeFails(src, store);
    expect(error.code).toBe("CASTLE_CHECKSUM_MISMATCH");
    expect(error.message).toContain(GOOD);
    expect(error.message).toContain(sha256("some other file\n"));
    expect(error.message).toContain("/other/pkg-1.0.bin");
  });

  it("refuses a download cut short, and one that stalls, keeping nothing", async () => {
    const store = openStore(temp("store"));
    const truncated = await realizeFails(source.http({ url: `${server.url}/truncated/pkg.bin`, sha256: GOOD }), store);
    expect(truncated.code).toBe("CASTLE_FETCH_FAILED");
    expect(truncated.message).toMatch(/truncated/);
    const started = Date.now();
    const stalled = await realizeFails(source.http({ url: `${server.url}/stall/pkg.bin`, sha256: GOOD }), store, { timeoutMs: 500 });
    expect(stalled.code).toBe("CASTLE_FETCH_FAILED");
    expect(stalled.message).toMatch(/timed out/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("falls through failing mirrors (refused, 404, 500, wrong file, truncated) to one that works", async () => {
    const store = openStore(temp("store"));
    const dead = await refusedPort();
    const mirrors = [
      `${server.url}/missing/pkg.bin`,
      `${server.url}/error/pkg.bin`,
      `${server.url}/other/pkg.bin`,
      `${server.url}/truncated/pkg.bin`,
      `${server.url}/good/pkg.bin`,
    ];
    const before = server.requests.length;
    const src = source.http({ url: `http://127.0.0.1:${dead}/pkg.bin`, sha256: GOOD, mirrors });
    const digest = await realizeSource(src, context(store, { env: { CASTLE_MIRRORS: `${temp("empty-mirror")}` } }));
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
    expect(server.requests.slice(before).map((p) => p.split("/")[1])).toEqual(["missing", "error", "other", "truncated", "good"]);
    expect(checkStore(store.root).problems).toEqual([]);
    expect(store.records()).toHaveLength(1);
  });

  it("names every URL it tried, and why each failed, when no mirror works", async () => {
    const store = openStore(temp("store"));
    const dead = await refusedPort();
    const src = source.http({
      url: `http://127.0.0.1:${dead}/pkg.bin`, sha256: GOOD,
      mirrors: [`${server.url}/missing/pkg.bin`, `${server.url}/error/pkg.bin`, `${server.url}/truncated/pkg.bin`],
    });
    const error = await realizeFails(src, store);
    expect(error.code).toBe("CASTLE_FETCH_FAILED");
    expect(error.message).toMatch(/connection refused/);
    expect(error.message).toMatch(/HTTP 404/);
    expect(error.message).toMatch(/HTTP 500/);
    expect(error.message).toMatch(/truncated/);
    expect((error.data.attempts as unknown[]).length).toBe(4);
  });
});

describe("sources: git", () => {
  const GIT_ENV = {
    ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.org", GIT_COMMITTER_NAME: "t",
    GIT_COMMITTER_EMAIL: "t@example.org", GIT_CONFIG_NOSYSTEM: "1", HOME: "/nonexistent",
  };
  let repoRoot: string;
  let commit: string;
  let gitServer: TestServer;
  beforeAll(async () => {
    repoRoot = temp("git");
    const work = join(repoRoot, "work");
    mkdirSync(work);
    const git = (...args: string[]) => execFileSync("git", args, { cwd: work, env: GIT_ENV }).toString().trim();
    git("init", "-q", "-b", "main");
    writeFileSync(join(work, "a.txt"), "one\n");
    git("add", "-A");
    git("commit", "-q", "-m", "first");
    commit = git("rev-parse", "HEAD");
    mkdirSync(join(repoRoot, "served"));
    execFileSync("git", ["clone", "-q", "--bare", work, join(repoRoot, "served/repo.git")], { env: GIT_ENV });
    gitServer = await startGitServer(join(repoRoot, "served"));
  });
  afterAll(async () => {
    await gitServer?.close();
  });

  it("says which branches exist when a ref does not, locally and over http", async () => {
    for (const url of [join(repoRoot, "work"), `${gitServer.url}/repo.git`]) {
      const store = openStore(temp("store"));
      const error = await realizeFails(source.git({ url, commit, ref: "no-such-branch", name: "repo" }), store);
      expect(error.code, url).toBe("CASTLE_GIT_REF_MISSING");
      expect(error.message, url).toContain("no-such-branch");
      // A local repository also lists what it has (over http, the fetch does not say).
      if (!url.startsWith("http")) expect(error.message, url).toContain("(it has: main)");
    }
  });

  it("refuses a commit the repository does not have", async () => {
    const missing = "0123456789abcdef0123456789abcdef01234567";
    for (const url of [join(repoRoot, "work"), `${gitServer.url}/repo.git`]) {
      const store = openStore(temp("store"));
      const error = await realizeFails(source.git({ url, commit: missing, ref: "main", name: "repo" }), store);
      expect(error.code, url).toBe("CASTLE_GIT_COMMIT_MISSING");
      expect(error.message, url).toContain(missing);
    }
  });

  it("fails cleanly when the git server is not there", async () => {
    const store = openStore(temp("store"));
    const error = await realizeFails(source.git({ url: `http://127.0.0.1:${await refusedPort()}/repo.git`, commit, name: "repo" }), store);
    expect(error.code).toBe("CASTLE_FETCH_FAILED");
    expect(error.message).toMatch(/connection refused/);
  });
});

describe("sources: overrides", () => {
  it("refuses an override dir that does not exist, naming the variable", () => {
    const missing = join(temp("o"), "nope");
    expect(() => parseOverrides({ CASTLE_OVERRIDE_MUSL: missing })).toThrow(expect.objectContaining({
      code: "CASTLE_OVERRIDE_MISSING",
      message: expect.stringContaining("CASTLE_OVERRIDE_MUSL"),
    }));
    const file = join(temp("o"), "file");
    writeFileSync(file, "not a dir");
    expect(() => parseOverrides({}, { musl: file })).toThrow(expect.objectContaining({ code: "CASTLE_OVERRIDE_MISSING" }));
  });
});

describe.skipIf(cliMissing())("sources: through the castle CLI as an unprivileged user", () => {
  const definition = () =>
    writeDefinition(temp("def"), {
      "castle.ts": `import { layer, source, system } from "castle";
const files = source.inline({ "hello.txt": "hi\\n" }, { name: "musl-src" });
const blob = source.http({ url: "${server.url}/other/blob.bin", sha256: "${GOOD}", name: "blob" });
const a = layer({ name: "a", mounts: { "/src": files, "/blob": blob }, script: "true" });
export default system({ name: "src", layers: [a] });
`,
    });

  it("exits 3 listing the system's sources when an override names none of them", async () => {
    const home = makeCliHome();
    const result = await runCastle(home, ["build", definition(), "--plain", "--override", `muzl=${temp("dir")}`]);
    expect(result.code, describeRun(result)).toBe(3);
    expect(result.stderr).toMatch(/^castle: there is no source named "muzl"/m);
    expect(result.stderr).toMatch(/^hint: its sources are: (musl-src, blob|blob, musl-src)$/m);
  });

  it("exits 4 naming the variable when an override dir does not exist", async () => {
    const home = makeCliHome();
    const result = await runCastle(home, ["build", definition(), "--plain"], { env: { CASTLE_OVERRIDE_MUSL_SRC: "/nonexistent/musl" } });
    expect(result.code, describeRun(result)).toBe(4);
    expect(result.stderr).toMatch(/^castle: CASTLE_OVERRIDE_MUSL_SRC points at \/nonexistent\/musl, which is not a directory/m);
  });

  it("exits 4 when a source archive holds an entry it may not (CASTLE_ARCHIVE_UNSAFE), nothing partial left", async () => {
    const home = makeCliHome();
    const dir = writeDefinition(temp("def"), {
      "castle.ts": `import { layer, source, system } from "castle";
const pkg = source.http({ url: "${server.url}/fifo/pkg.tar", sha256: "${sha256(FIFO_TAR)}", name: "pkg", extract: true, strip: 1 });
const a = layer({ name: "a", mounts: { "/src": pkg }, script: "true" });
export default system({ name: "src", layers: [a] });
`,
    });
    const result = await runCastle(home, ["build", dir, "--plain"]);
    expect(result.code, describeRun(result)).toBe(4);
    expect(result.stderr).toMatch(/^castle: pkg: the archive holds pipe, a device, fifo or socket$/m);
    expect(checkStore(home.cache).problems).toEqual([]);
  });

  it("exits 4 on a checksum mismatch, blaming the layer, with nothing partial left in the store", async () => {
    const home = makeCliHome();
    const result = await runCastle(home, ["build", definition(), "--plain"]);
    expect(result.code, describeRun(result)).toBe(4);
    expect(result.stderr).toMatch(/blob: .*\/other\/blob\.bin served a file with sha256 [0-9a-f]{64}, but the definition pins/);
    expect(result.stderr).not.toMatch(/internal error/);
    expect(checkStore(home.cache).problems).toEqual([]);
  });
});

describe.skipIf(cliMissing())("sources: a local directory with setuid, setgid and sticky modes", () => {
  /** A source dir (owned by whoever runs the tests) with special modes on files and dirs. */
  const specialSource = () => {
    const dir = temp("special");
    writeFileSync(join(dir, "suid"), "#!/bin/sh\necho suid\n");
    chmodSync(join(dir, "suid"), 0o4755);
    writeFileSync(join(dir, "sgid"), "sgid\n");
    chmodSync(join(dir, "sgid"), 0o2755);
    mkdirSync(join(dir, "shared"));
    writeFileSync(join(dir, "shared/file"), "in a setgid dir\n");
    chmodSync(join(dir, "shared"), 0o2775);
    mkdirSync(join(dir, "tmp"));
    chmodSync(join(dir, "tmp"), 0o1777);
    return dir;
  };

  it("imports them with their modes as an unprivileged user, with the same digest as root's import", async () => {
    const dir = specialSource();
    // As the test runner (root here): realized in-process.
    const store = openStore(temp("store"));
    const rootDigest = await realizeSource(source.local(dir, { name: "special" }), context(store));
    const home = makeCliHome();
    const def = writeDefinition(temp("def"), {
      "castle.ts": `import { layer, source, system } from "castle";
const special = layer.import({ name: "special", from: source.local(${JSON.stringify(dir)}, { name: "special" }) });
export default system({ name: "special", layers: [special] });
`,
    });
    const result = await runCastle(home, ["build", def, "--plain", "--json"]);
    expect(result.code, describeRun(result)).toBe(0);
    expect(result.stderr).not.toMatch(/CASTLE_SOURCE_CHANGED|kept changing/);
    const layers = (JSON.parse(result.stdout) as { layers: Array<{ name: string; digest: string }> }).layers;
    expect(layers.find((l) => l.name === "special")!.digest).toBe(rootDigest);
    const tree = join(home.cache, "trees", rootDigest);
    expect(statSync(join(tree, "suid")).mode & 0o7777).toBe(0o4755);
    expect(statSync(join(tree, "sgid")).mode & 0o7777).toBe(0o2755);
    expect(statSync(join(tree, "shared")).mode & 0o7777).toBe(0o2775);
    expect(statSync(join(tree, "tmp")).mode & 0o7777).toBe(0o1777);
    expect(readFileSync(join(tree, "suid"), "utf8")).toBe("#!/bin/sh\necho suid\n");
    expect(readdirSync(join(tree, "shared"))).toEqual(["file"]);
    expect(checkStore(home.cache).problems).toEqual([]);
  });

  it("still refuses a setuid source that really changes while it is copied", async () => {
    const dir = specialSource();
    const store = openStore(temp("store"));
    let writes = 0;
    // Each copy (the first and the one retry) starts with the setuid file rewritten.
    const onProgress: SourceContext["onProgress"] = (p) => {
      if (p.phase !== "copy" || p.bytesDone !== 0) return;
      writeFileSync(join(dir, "suid"), `changed ${writes++}\n`);
      chmodSync(join(dir, "suid"), 0o4755);
    };
    const error = await realizeFails(source.local(dir, { name: "changing" }), store, { onProgress });
    expect(error.code).toBe("CASTLE_SOURCE_CHANGED");
    expect(writes).toBe(2);
  });
});
