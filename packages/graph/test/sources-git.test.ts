// Tests for git sources: a repository made with the git CLI (two branches, an executable, a
// symlink, a subdir), realized from its local path and over the smart http protocol served by
// `git http-backend` on loopback. Category: graph (see test/README.md).

import { execFileSync } from "node:child_process";
import fs, { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { removeTree } from "@castle/cache";
import { beforeAll, afterAll, describe, expect, it } from "vitest";
import { source } from "../src/define/index";
import { defaultGitHttp, fetchGitCommit, realizeSource, resolveRef, sourceIdentity } from "../src/sources/index";
import { startGitServer } from "./helpers/git-server";
import { refusedPort, startHttpServer, type TestServer } from "./helpers/http-server";
import { sourceContext, tempStore, useTempDirs } from "./helpers/temp-dirs";

const temp = useTempDirs();
const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.org", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.org",
  GIT_CONFIG_NOSYSTEM: "1", HOME: "/nonexistent",
};

interface Fixture {
  work: string;
  bare: string;
  /** main: first (has sub/), second (tip); feature: third (adds feature.txt). */
  first: string;
  second: string;
  third: string;
}

function makeRepo(root: string): Fixture {
  const work = join(root, "work");
  mkdirSync(work);
  const git = (...args: string[]) => execFileSync("git", args, { cwd: work, env: GIT_ENV }).toString().trim();
  git("init", "-q", "-b", "main");
  writeFileSync(join(work, "a.txt"), "one\n");
  mkdirSync(join(work, "bin"));
  writeFileSync(join(work, "bin/tool"), "#!/bin/sh\necho tool\n", { mode: 0o755 });
  symlinkSync("a.txt", join(work, "link"));
  mkdirSync(join(work, "sub/deep"), { recursive: true });
  writeFileSync(join(work, "sub/deep/f"), "deep\n");
  git("add", "-A");
  git("commit", "-q", "-m", "first");
  const first = git("rev-parse", "HEAD");
  writeFileSync(join(work, "a.txt"), "two\n");
  git("commit", "-q", "-am", "second");
  const second = git("rev-parse", "HEAD");
  git("checkout", "-q", "-b", "feature");
  writeFileSync(join(work, "feature.txt"), "feature\n");
  git("add", "feature.txt");
  git("commit", "-q", "-m", "third");
  const third = git("rev-parse", "HEAD");
  git("checkout", "-q", "main");
  const bare = join(root, "served", "repo.git");
  mkdirSync(join(root, "served"));
  execFileSync("git", ["clone", "-q", "--bare", work, bare], { env: GIT_ENV });
  return { work, bare, first, second, third };
}

function checkFirst(tree: string): void {
  expect(readdirSync(tree).sort()).toEqual(["a.txt", "bin", "link", "sub"]);
  expect(readFileSync(join(tree, "a.txt"), "utf8")).toBe("one\n");
  expect(lstatSync(join(tree, "bin/tool")).mode & 0o777).toBe(0o755);
  expect(lstatSync(join(tree, "a.txt")).mode & 0o777).toBe(0o644);
  expect(readlinkSync(join(tree, "link"))).toBe("a.txt");
  expect(readFileSync(join(tree, "sub/deep/f"), "utf8")).toBe("deep\n");
}

describe("git sources", () => {
  let repo: Fixture;
  let server: TestServer | undefined;
  let url: string;
  const fixtureRoot = mkdtempSync(join(tmpdir(), "castle-git-fixture-"));
  beforeAll(async () => {
    repo = makeRepo(fixtureRoot);
    server = await startGitServer(join(repo.bare, ".."));
    url = `${server.url}/repo.git`;
  });
  afterAll(async () => {
    await server?.close();
    removeTree(fixtureRoot);
  });

  it("has the pin as identity, with no network", async () => {
    const src = source.git({ url: "http://127.0.0.1:1/none.git", commit: repo.first, subdir: "sub/" });
    expect(await sourceIdentity(src, sourceContext(tempStore(temp)))).toEqual({ name: "none", id: `git:${repo.first}:sub` });
  });

  it("realizes a commit from a local path, with modes, symlinks and a subdir", async () => {
    const store = tempStore(temp);
    const ctx = sourceContext(store);
    checkFirst(store.treePath(await realizeSource(source.git({ url: repo.work, commit: repo.first }), ctx)));
    const sub = store.treePath(await realizeSource(source.git({ url: repo.bare, commit: repo.first, subdir: "sub" }), ctx));
    expect(readdirSync(sub)).toEqual(["deep"]);
    const feature = store.treePath(await realizeSource(source.git({ url: repo.work, ref: "feature", commit: repo.third }), ctx));
    expect(readFileSync(join(feature, "feature.txt"), "utf8")).toBe("feature\n");
  });

  it("realizes commits over http, tip or not, and needs no network the second time", async () => {
    const store = tempStore(temp);
    const ctx = sourceContext(store);
    const third = store.treePath(await realizeSource(source.git({ url, ref: "feature", commit: repo.third }), ctx));
    expect(readFileSync(join(third, "feature.txt"), "utf8")).toBe("feature\n");
    expect(lstatSync(join(third, "bin/tool")).mode & 0o777).toBe(0o755);
    // Not the tip of main: the shallow fetch misses it and a deeper one finds it.
    checkFirst(store.treePath(await realizeSource(source.git({ url, ref: "main", commit: repo.first }), ctx)));
    const requests = server!.requests.length;
    checkFirst(store.treePath(await realizeSource(source.git({ url, ref: "main", commit: repo.first }), ctx)));
    // Another subdir of a cached commit: a new tree, written from the cached repository.
    const sub = store.treePath(await realizeSource(source.git({ url, ref: "main", commit: repo.first, subdir: "sub/deep" }), ctx));
    expect(readdirSync(sub)).toEqual(["f"]);
    expect(server!.requests.length).toBe(requests);
  });

  it("works from the cache with the server gone", async () => {
    const root = temp("git-gone");
    const fixture = makeRepo(root);
    const gone = await startGitServer(join(fixture.bare, ".."));
    const goneUrl = `${gone.url}/repo.git`;
    const store = tempStore(temp);
    await realizeSource(source.git({ url: goneUrl, commit: fixture.second }), sourceContext(store));
    await gone.close();
    const sub = await realizeSource(source.git({ url: goneUrl, commit: fixture.second, subdir: "bin" }), sourceContext(store));
    expect(readdirSync(store.treePath(sub))).toEqual(["tool"]);
    const missing = await realizeSource(source.git({ url: goneUrl, commit: fixture.third }), sourceContext(store)).catch((e: unknown) => e);
    expect(missing).toMatchObject({ code: "CASTLE_FETCH_FAILED" });
    expect((missing as Error).message).toContain("connection refused");
  });

  it("reports a missing ref, a missing commit, a missing subdir and an unreachable URL", async () => {
    const ctx = sourceContext(tempStore(temp));
    const fail = (src: ReturnType<typeof source.git>) => realizeSource(src, ctx).catch((e: unknown) => e);
    const absent = "0123456789abcdef0123456789abcdef01234567";
    for (const where of [url, repo.work]) {
      const noRef = await fail(source.git({ url: where, ref: "nope", commit: repo.first }));
      expect(noRef, where).toMatchObject({ code: "CASTLE_GIT_REF_MISSING", data: { ref: "nope" } });
      const noCommit = await fail(source.git({ url: where, ref: "main", commit: absent }));
      expect(noCommit, where).toMatchObject({ code: "CASTLE_GIT_COMMIT_MISSING", data: { url: where, ref: "main", commit: absent } });
      expect((noCommit as Error).message).toContain(absent);
      const noSubdir = await fail(source.git({ url: where, commit: repo.first, subdir: "nothing/here" }));
      expect(noSubdir, where).toMatchObject({ code: "CASTLE_GIT_SUBDIR_MISSING" });
    }
    const unreachable = `http://127.0.0.1:${await refusedPort()}/repo.git`;
    expect(await fail(source.git({ url: unreachable, commit: absent }))).toMatchObject({ code: "CASTLE_FETCH_FAILED" });
  });

  it("gives up on a server that stops answering", async () => {
    const silent = await startHttpServer(() => undefined);
    try {
      const src = source.git({ url: `${silent.url}/repo.git`, commit: repo.first });
      const error = await realizeSource(src, sourceContext(tempStore(temp), { timeoutMs: 300 })).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "CASTLE_FETCH_FAILED" });
      expect((error as Error).message).toMatch(/timed out/i);
    } finally {
      await silent.close();
    }
  });

  it("resolves refs like ls-remote and fetches by ref for the CLI, reusing the cache", async () => {
    const http = await defaultGitHttp();
    for (const where of [url, repo.work]) {
      expect(await resolveRef({ url: where, fs, http })).toEqual({ ref: "refs/heads/main", commit: repo.second });
      expect(await resolveRef({ url: where, ref: "feature", fs, http })).toEqual({ ref: "refs/heads/feature", commit: repo.third });
    }
    const cacheDir = temp("git-cache");
    const checkout = await fetchGitCommit({ url, ref: "feature", fs, http, cacheDir });
    expect(checkout.commit).toBe(repo.third);
    const dest = temp("checkout");
    expect(await checkout.writeTree(dest, "bin")).toBe(1);
    expect(readdirSync(dest)).toEqual(["tool"]);
    const before = server!.requests.filter((r) => r.includes("git-upload-pack") && !r.includes("info/refs")).length;
    const again = await fetchGitCommit({ url, ref: "feature", fs, http, cacheDir });
    expect(again.commit).toBe(repo.third);
    // Only ls-remote ran: no pack was fetched, the ref had not moved.
    expect(server!.requests.filter((r) => r.includes("git-upload-pack") && !r.includes("info/refs")).length).toBe(before);
  });
});
