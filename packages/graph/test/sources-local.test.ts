// Tests for local sources, ignores, the stat cache and overrides, on real directories; and for
// inline sources. Category: graph (see test/README.md).

import { chmodSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { digestTree, hashFile } from "@castle/cache";
import { describe, expect, it } from "vitest";
import { source } from "../src/define/index";
import { compileIgnore } from "../src/sources/ignore";
import { digestLocalDir, normaliseSourceName, parseOverrides, realizeSource, sourceIdentity } from "../src/sources/index";
import { sourceContext, tempStore, useTempDirs } from "./helpers/temp-dirs";

const temp = useTempDirs();

function writeProject(dir: string): void {
  mkdirSync(join(dir, "src/obj"), { recursive: true });
  mkdirSync(join(dir, ".git/objects"), { recursive: true });
  mkdirSync(join(dir, "build/out"), { recursive: true });
  writeFileSync(join(dir, "src/main.c"), "int main(void) { return 0; }\n");
  writeFileSync(join(dir, "src/main.o"), "object");
  writeFileSync(join(dir, "src/obj/x.o"), "object");
  writeFileSync(join(dir, ".git/HEAD"), "ref: refs/heads/main\n");
  writeFileSync(join(dir, "build/out/a"), "out");
  writeFileSync(join(dir, "build/keep"), "keep");
  writeFileSync(join(dir, "run.sh"), "#!/bin/sh\n", { mode: 0o755 });
  chmodSync(join(dir, "run.sh"), 0o755);
  symlinkSync("src/main.c", join(dir, "main-link"));
  symlinkSync("/nonexistent/absolute", join(dir, "dangling"));
}

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

  it("does not trust entries written within the racy window", () => {
    const dir = temp("racy");
    writeMany(dir, 100);
    const statCacheDir = temp("stat-cache");
    expect(digestLocalDir(dir, { ignore: [], statCacheDir }).hashed).toBe(100);
    // Just written: every entry was racy when the cache was saved, so all are hashed again.
    expect(digestLocalDir(dir, { ignore: [], statCacheDir }).hashed).toBe(100);
  });
});

describe("overrides", () => {
  it("normalise names and read env vars and CLI pairs", () => {
    const a = temp("ovr");
    const b = temp("ovr");
    expect(normaliseSourceName("Musl-Src")).toBe("musl_src");
    const map = parseOverrides({ CASTLE_OVERRIDE_MUSL_SRC: a, CASTLE_OVERRIDE_EMPTY: "", OTHER: "x" }, { "busy-box": relative(process.cwd(), b) });
    expect([...map.entries()].sort()).toEqual([["busy_box", b], ["musl_src", a]].sort());
  });

  it("reject a missing override dir, naming the variable and the path", () => {
    const missing = join(temp("ovr"), "absent");
    const env = () => parseOverrides({ CASTLE_OVERRIDE_musl: missing });
    expect(env).toThrow(expect.objectContaining({ code: "CASTLE_OVERRIDE_MISSING" }));
    expect(env).toThrow(/CASTLE_OVERRIDE_musl.*absent/);
    const file = join(temp("ovr"), "file");
    writeFileSync(file, "");
    expect(() => parseOverrides({}, { musl: file })).toThrow(/--override musl=.*not a directory/);
  });

  it("replace a source by a local dir, changing its identity and its tree", async () => {
    const dir = temp("ovr");
    writeProject(dir);
    const store = tempStore(temp);
    const src = source.http({ name: "Musl-Src", url: "http://127.0.0.1:1/musl-1.2.3.tar.gz", sha256: "a".repeat(64) });
    const plain = await sourceIdentity(src, sourceContext(store));
    const overrides = parseOverrides({ CASTLE_OVERRIDE_MUSL_SRC: dir });
    const ctx = sourceContext(store, { overrides });
    const over = await sourceIdentity(src, ctx);
    expect(over.id).not.toBe(plain.id);
    expect(over).toEqual({ name: "Musl-Src", id: over.id, overriddenBy: dir });
    const digest = await realizeSource(src, ctx);
    expect(over.id).toBe(`local:${digest}`);
    expect(readdirSync(store.treePath(digest))).not.toContain(".git");
    expect(readdirSync(store.treePath(digest))).toContain("run.sh");
  });
});

describe("inline sources", () => {
  it("write contents and modes, and have an identity that is stable and covers modes", async () => {
    const store = tempStore(temp);
    const files = { "etc/hostname": "castle\n", "bin/hello": { content: "#!/bin/sh\necho hi\n", mode: 0o755 } };
    const src = source.inline(files);
    const id = await sourceIdentity(src, sourceContext(store));
    const reordered = source.inline({ "bin/hello": files["bin/hello"], "etc/hostname": "castle\n" });
    expect((await sourceIdentity(reordered, sourceContext(tempStore(temp)))).id).toBe(id.id);
    expect(id.id).toMatch(/^inline:[0-9a-f]{64}$/);
    const execOff = source.inline({ ...files, "bin/hello": { content: files["bin/hello"].content, mode: 0o644 } });
    expect((await sourceIdentity(execOff, sourceContext(store))).id).not.toBe(id.id);
    const tree = store.treePath(await realizeSource(src, sourceContext(store)));
    expect(readFileSync(join(tree, "etc/hostname"), "utf8")).toBe("castle\n");
    expect(statSync(join(tree, "bin/hello")).mode & 0o777).toBe(0o755);
    expect(statSync(join(tree, "etc/hostname")).mode & 0o777).toBe(0o644);
    expect(statSync(join(tree, "etc")).mode & 0o777).toBe(0o755);
  });
});
