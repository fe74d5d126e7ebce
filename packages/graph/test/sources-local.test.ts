// Tests for local sources, their ignore patterns and the stat cache, on real directories.
// Category: graph (see test/README.md).

import { chmodSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { digestTree, hashFile } from "@castle/cache";
import { describe, expect, it } from "vitest";
import { source } from "../src/define/index";
import { compileIgnore } from "../src/sources/ignore";
import { digestLocalDir, realizeSource, sourceIdentity } from "../src/sources/index";
import { writeProject } from "./helpers/project";
import { sourceContext, tempStore, useTempDirs } from "./helpers/temp-dirs";

const temp = useTempDirs();

describe("ignore patterns", () => {
  it("match names anywhere, anchored paths, globs and directory-only patterns", () => {
    const m = compileIgnore([".git", "*.o", "build/out", "docs/**/*.tmp", "cache/", "/top", "?.bak"]);
    expect(m(".git", true)).toBe(true);
    expect(m("sub/.git", true)).toBe(true);
    expect(m("a/b/c.o", false)).toBe(true);
    expect(m("a/b/c.oo", false)).toBe(false);
    expect(m("build/out", true)).toBe(true);
    expect(m("x/build/out", true)).toBe(false);
    expect(m("docs/x.tmp", false)).toBe(true);
    expect(m("docs/a/b/x.tmp", false)).toBe(true);
    expect(m("cache", true)).toBe(true);
    expect(m("cache", false)).toBe(false);
    expect(m("top", false)).toBe(true);
    expect(m("a/top", false)).toBe(false);
    expect(m("x.bak", false)).toBe(true);
    expect(m("xy.bak", false)).toBe(false);
  });
});

describe("local sources", () => {
  it("hash to the digest of their stored snapshot, with ignores applied", async () => {
    const dir = temp("proj");
    writeProject(dir);
    const store = tempStore(temp);
    const src = source.local(dir, { ignore: [".git", "*.o", "build/out"] });
    const id = await sourceIdentity(src, sourceContext(store));
    expect(id.id).toMatch(/^local:[0-9a-f]{64}$/);
    expect(id.id).not.toContain(dir);
    const digest = await realizeSource(src, sourceContext(store));
    expect(id.id).toBe(`local:${digest}`);
    const tree = store.treePath(digest);
    expect(digestTree(tree).digest).toBe(digest);
    expect(readdirSync(tree).sort()).toEqual(["build", "dangling", "main-link", "run.sh", "src"]);
    expect(readdirSync(join(tree, "src"))).toEqual(["main.c", "obj"]);
    expect(readdirSync(join(tree, "build"))).toEqual(["keep"]);
    expect(statSync(join(tree, "run.sh")).mode & 0o777).toBe(0o755);
    expect(readlinkSync(join(tree, "dangling"))).toBe("/nonexistent/absolute");
  });

  it("change identity when content changes, not when only mtimes do", async () => {
    const dir = temp("proj");
    writeProject(dir);
    const ctx = sourceContext(tempStore(temp));
    const src = source.local(dir);
    const first = (await sourceIdentity(src, ctx)).id;
    utimesSync(join(dir, "src/main.c"), 1_000_000, 1_000_000);
    expect((await sourceIdentity(src, ctx)).id).toBe(first);
    writeFileSync(join(dir, "src/main.c"), "int main(void) { return 1; }\n");
    const changed = (await sourceIdentity(src, ctx)).id;
    expect(changed).not.toBe(first);
    writeFileSync(join(dir, ".git/HEAD"), "ignored by default\n");
    expect((await sourceIdentity(src, ctx)).id).toBe(changed);
    chmodSync(join(dir, "src/main.c"), 0o600);
    expect((await sourceIdentity(src, ctx)).id).not.toBe(changed);
  });

  it("skip the copy when the store already holds the digest", async () => {
    const a = temp("a");
    const b = temp("b");
    writeProject(a);
    writeProject(b);
    const store = tempStore(temp);
    const phases: string[] = [];
    const ctx = sourceContext(store, { onProgress: (p) => phases.push(p.phase) });
    const da = await realizeSource(source.local(a), ctx);
    expect(phases).toContain("copy");
    phases.length = 0;
    expect(await realizeSource(source.local(b), ctx)).toBe(da);
    expect(phases).toEqual([]);
  });

  it("link the files that did not change from the tree last made from the same directory", async () => {
    const dir = temp("edited");
    writeProject(dir);
    const store = tempStore(temp);
    const src = source.local(dir);
    const first = await realizeSource(src, sourceContext(store));
    writeFileSync(join(dir, "src/main.c"), "int main(void) { return 7; }\n");
    const second = await realizeSource(src, sourceContext(store));
    expect(second).not.toBe(first);
    const inode = (digest: string, path: string) => statSync(join(store.treePath(digest), path)).ino;
    // run.sh did not change: the same file (one inode, two trees); main.c did: a new file.
    expect(inode(second, "run.sh")).toBe(inode(first, "run.sh"));
    expect(inode(second, "build/keep")).toBe(inode(first, "build/keep"));
    expect(inode(second, "src/main.c")).not.toBe(inode(first, "src/main.c"));
    expect(readFileSync(join(store.treePath(second), "src/main.c"), "utf8")).toBe("int main(void) { return 7; }\n");
    expect(readFileSync(join(store.treePath(first), "src/main.c"), "utf8")).not.toContain("return 7");
    // The stored digest is still the content's: the linked tree is what the directory holds.
    expect(second).toBe(digestLocalDir(dir, { ignore: [".git"] }).digest);
  });

  it("retry a copy that raced with a write, and fail clearly when the dir keeps changing", async () => {
    const dir = temp("proj");
    writeProject(dir);
    const store = tempStore(temp);
    let writes = 0;
    const once = sourceContext(store, {
      onProgress: (p) => {
        if (p.phase === "copy" && p.bytesDone === 0 && writes++ === 0) writeFileSync(join(dir, "src/main.c"), "changed\n");
      },
    });
    const digest = await realizeSource(source.local(dir), once);
    expect(readFileSync(join(store.treePath(digest), "src/main.c"), "utf8")).toBe("changed\n");
    writeFileSync(join(dir, "src/main.c"), "not stored yet\n");
    const always = sourceContext(store, {
      onProgress: (p) => {
        if (p.phase === "copy" && p.bytesDone === 0) writeFileSync(join(dir, "src/main.c"), `v${writes++}\n`);
      },
    });
    const error = await realizeSource(source.local(dir), always).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "CASTLE_SOURCE_CHANGED", data: { dir } });
    expect(readdirSync(store.dir("tmp"))).toEqual([]);
  });

  it("report what the walk stat'ed: the root, every digested dir and file, before reading it", () => {
    const dir = temp("walked");
    writeProject(dir);
    const reported: { path: string; follow: boolean; kind: string }[] = [];
    digestLocalDir(dir, { ignore: [".git", "*.o"], onWalk: (reads) => reported.push(...reads.map((r) => ({ path: r.path, follow: r.follow, kind: r.identity.kind }))) });
    const paths = reported.map((r) => r.path.slice(dir.length));
    expect(reported[0]).toEqual({ path: dir, follow: true, kind: "present" });
    expect(paths).toEqual(expect.arrayContaining(["/src", "/src/main.c", "/src/obj", "/build", "/build/out", "/build/out/a", "/build/keep", "/run.sh"]));
    // Ignored entries and symlinks are not reported (a link cannot change unless its dir does).
    expect(paths.filter((p) => p.includes(".git") || p.endsWith(".o") || p === "/main-link" || p === "/dangling")).toEqual([]);
    expect(reported.slice(1).every((r) => !r.follow && r.kind === "present")).toBe(true);
    const main = reported.find((r) => r.path === join(dir, "src/main.c"))!;
    expect(main).toBeDefined();
  });

  it("report a missing directory", async () => {
    const error = await sourceIdentity(source.local(join(temp("x"), "nope")), sourceContext(tempStore(temp))).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "CASTLE_SOURCE_MISSING" });
  });
});

describe("the stat cache", () => {
  function writeMany(dir: string, n: number): void {
    for (let d = 0; d < n / 100; d++) {
      mkdirSync(join(dir, `d${d}`));
      for (let f = 0; f < 100; f++) writeFileSync(join(dir, `d${d}`, `f${f}.txt`), `file ${d}/${f}\n`.repeat(20));
    }
  }

  it("re-reads only files whose stat changed", () => {
    const dir = temp("many");
    writeMany(dir, 2000);
    const statCacheDir = temp("stat-cache");
    let reads = 0;
    const counting = (path: string, mode: number) => {
      reads++;
      return hashFile(path, mode);
    };
    const options = { ignore: [], statCacheDir, hashFile: counting, racyMs: 0 };
    const t0 = performance.now();
    const cold = digestLocalDir(dir, options);
    const t1 = performance.now();
    const warm = digestLocalDir(dir, options);
    const t2 = performance.now();
    expect(cold.hashed).toBe(2000);
    expect(warm.hashed).toBe(0);
    expect(reads).toBe(2000);
    expect(warm.digest).toBe(cold.digest);
    console.log(`local identity of 2000 files: cold ${(t1 - t0).toFixed(1)} ms, warm ${(t2 - t1).toFixed(1)} ms`);
    writeFileSync(join(dir, "d3/f7.txt"), "new content\n");
    const changed = digestLocalDir(dir, options);
    expect(changed.hashed).toBe(1);
    expect(changed.digest).not.toBe(cold.digest);
    expect(digestLocalDir(dir, { ignore: [] }).digest).toBe(changed.digest); // Same as with no cache at all.
  });

  it("trusts the symlinks of an unchanged directory, and sees a replaced one", async () => {
    const dir = temp("links");
    mkdirSync(join(dir, "bin"));
    writeFileSync(join(dir, "bin/busybox"), "binary");
    for (let i = 0; i < 50; i++) symlinkSync("busybox", join(dir, `bin/applet${i}`));
    const statCacheDir = temp("stat-cache");
    const options = { ignore: [], statCacheDir, racyMs: 0 };
    const first = digestLocalDir(dir, options);
    expect(digestLocalDir(dir, options).digest).toBe(first.digest);
    await new Promise((r) => setTimeout(r, 20));
    rmSync(join(dir, "bin/applet7"));
    symlinkSync("elsewhere", join(dir, "bin/applet7"));
    const changed = digestLocalDir(dir, options);
    expect(changed.digest).not.toBe(first.digest);
    expect(changed.digest).toBe(digestLocalDir(dir, { ignore: [] }).digest);
    expect(changed.entries.find((e) => e.path === "bin/applet7")).toMatchObject({ kind: "symlink", target: "elsewhere" });
  });

  it("does not trust entries written within the racy window", () => {
    const dir = temp("racy");
    writeMany(dir, 100);
    const statCacheDir = temp("stat-cache");
    expect(digestLocalDir(dir, { ignore: [], statCacheDir }).hashed).toBe(100);
    // Just written: every entry was racy when the cache was saved, so all are hashed again.
    expect(digestLocalDir(dir, { ignore: [], statCacheDir }).hashed).toBe(100);
  });
});
