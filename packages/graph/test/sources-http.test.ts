// Tests for http sources against a real node:http server on loopback: downloads, extraction of
// archives made with the system tar, mirrors, checksum and truncation failures, hostile archives,
// and concurrent realizations. Category: graph (see test/README.md).

import { execFile, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import tarStream from "tar-stream";
import { source } from "../src/define/index";
import { realizeSource, sourceIdentity } from "../src/sources/index";
import { refusedPort, serveFiles, startHttpServer, type TestServer } from "./helpers/http-server";
import { sourceContext, tempStore, useTempDirs } from "./helpers/temp-dirs";

const temp = useTempDirs();
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** pkg-1.0/{README, bin/run (0755), lib/readme-link → ../README} packed with the system tar. */
function makeArchives(): Record<"gz" | "xz" | "bz2" | "zst", Buffer> {
  const dir = temp("fixture");
  mkdirSync(join(dir, "pkg-1.0/bin"), { recursive: true });
  mkdirSync(join(dir, "pkg-1.0/lib"));
  writeFileSync(join(dir, "pkg-1.0/README"), "hello\n");
  writeFileSync(join(dir, "pkg-1.0/bin/run"), "#!/bin/sh\necho run\n", { mode: 0o755 });
  symlinkSync("../README", join(dir, "pkg-1.0/lib/readme-link"));
  const pack = (flag: string, name: string) => {
    execFileSync("tar", ["-c", flag, "-f", join(dir, name), "-C", dir, "pkg-1.0"]);
    return readFileSync(join(dir, name));
  };
  return { gz: pack("-z", "p.tgz"), xz: pack("-J", "p.txz"), bz2: pack("-j", "p.tbz"), zst: pack("--zstd", "p.tzst") };
}

function checkTree(root: string): void {
  expect(readdirSync(root).sort()).toEqual(["README", "bin", "lib"]);
  expect(readFileSync(join(root, "README"), "utf8")).toBe("hello\n");
  expect(lstatSync(join(root, "bin/run")).mode & 0o777).toBe(0o755);
  expect(lstatSync(join(root, "README")).mode & 0o777).toBe(0o644);
  expect(readlinkSync(join(root, "lib/readme-link"))).toBe("../README");
}

async function withServer<T>(files: Map<string, Buffer>, fn: (server: TestServer) => Promise<T>): Promise<T> {
  const server = await startHttpServer(serveFiles(files));
  try {
    return await fn(server);
  } finally {
    await server.close();
  }
}

describe("http sources", () => {
  const archives = makeArchives();

  it("downloads, verifies and unpacks tar.gz, tar.xz, tar.bz2 and tar.zst, stripping the top dir", async () => {
    const files = new Map(Object.entries(archives).map(([ext, body]) => [`/pkg-1.0.tar.${ext}`, body]));
    await withServer(files, async (server) => {
      const store = tempStore(temp);
      const ctx = sourceContext(store);
      const digests = new Set<string>();
      for (const [ext, body] of Object.entries(archives)) {
        const src = source.http({ url: `${server.url}/pkg-1.0.tar.${ext}`, sha256: sha256(body) });
        const digest = await realizeSource(src, ctx);
        checkTree(store.treePath(digest));
        digests.add(digest);
        expect(existsSync(join(store.dir("downloads"), sha256(body)))).toBe(true);
      }
      expect(digests.size).toBe(1); // Same files, whatever the compression.
      const before = server.requests.length;
      const again = source.http({ url: `${server.url}/pkg-1.0.tar.gz`, sha256: sha256(archives.gz) });
      expect(digests.has(await realizeSource(again, ctx))).toBe(true);
      expect(server.requests.length).toBe(before); // A store lookup, no request.
    });
  });

  it("computes the identity from the pin alone, with no server", async () => {
    const port = await refusedPort();
    const src = source.http({ url: `http://127.0.0.1:${port}/pkg-1.0.tar.gz`, sha256: sha256(archives.gz) });
    const id = await sourceIdentity(src, sourceContext(tempStore(temp)));
    expect(id).toEqual({ name: "pkg", id: `http:${sha256(archives.gz)}:x1:s1` });
    const raw = source.http({ url: `http://127.0.0.1:${port}/f.bin`, sha256: sha256(archives.gz), extract: false });
    expect((await sourceIdentity(raw, sourceContext(tempStore(temp)))).id).toBe(`http:${sha256(archives.gz)}:x0:s0:f.bin`);
  });

  it("places a file that is not extracted under its name", async () => {
    const body = Buffer.from("just a patch\n");
    await withServer(new Map([["/fix%201.patch", body]]), async (server) => {
      const store = tempStore(temp);
      const src = source.http({ url: `${server.url}/fix%201.patch`, sha256: sha256(body) });
      const tree = store.treePath(await realizeSource(src, sourceContext(store)));
      expect(readdirSync(tree)).toEqual(["fix 1.patch"]);
      expect(readFileSync(join(tree, "fix 1.patch"), "utf8")).toBe("just a patch\n");
    });
  });

  it("unpacks a Debian package's data.tar member when asked, and keeps the .deb file by default", async () => {
    const dir = temp("deb");
    mkdirSync(join(dir, "pkg/DEBIAN"), { recursive: true });
    mkdirSync(join(dir, "pkg/usr/bin"), { recursive: true });
    writeFileSync(join(dir, "pkg/DEBIAN/control"), "Package: pkg\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n");
    writeFileSync(join(dir, "pkg/usr/bin/run"), "#!/bin/sh\necho run\n", { mode: 0o4755 });
    execFileSync("dpkg-deb", ["--root-owner-group", "-Zxz", "--build", join(dir, "pkg"), join(dir, "pkg_1.0_all.deb")], { stdio: "ignore" });
    const deb = readFileSync(join(dir, "pkg_1.0_all.deb"));
    await withServer(new Map([["/pkg_1.0_all.deb", deb]]), async (server) => {
      const store = tempStore(temp);
      const ctx = sourceContext(store);
      const unpacked = source.http({ url: `${server.url}/pkg_1.0_all.deb`, sha256: sha256(deb), extract: true, strip: 0 });
      const tree = store.treePath(await realizeSource(unpacked, ctx));
      expect(readdirSync(tree)).toEqual(["usr"]);
      expect(readFileSync(join(tree, "usr/bin/run"), "utf8")).toBe("#!/bin/sh\necho run\n");
      expect(lstatSync(join(tree, "usr/bin/run")).mode & 0o7777).toBe(0o755); // setuid dropped
      const asFile = source.http({ url: `${server.url}/pkg_1.0_all.deb`, sha256: sha256(deb) });
      expect(readdirSync(store.treePath(await realizeSource(asFile, ctx)))).toEqual(["pkg_1.0_all.deb"]);
    });
    // An ar archive that is not a Debian package is refused with a clear code.
    writeFileSync(join(dir, "notes.txt"), "x\n");
    execFileSync("ar", ["rc", join(dir, "other.a"), join(dir, "notes.txt")]);
    const other = readFileSync(join(dir, "other.a"));
    await withServer(new Map([["/other.deb", other]]), async (server) => {
      const src = source.http({ url: `${server.url}/other.deb`, sha256: sha256(other), extract: true });
      await expect(realizeSource(src, sourceContext(tempStore(temp)))).rejects.toMatchObject({ code: "CASTLE_EXTRACT_FAILED" });
    });
  });

  it("refuses a wrong checksum, naming the URL and both digests, and keeps nothing", async () => {
    await withServer(new Map([["/p.tar.gz", archives.gz]]), async (server) => {
      const store = tempStore(temp);
      const wrong = "0".repeat(64);
      const src = source.http({ url: `${server.url}/p.tar.gz`, sha256: wrong });
      const error = await realizeSource(src, sourceContext(store)).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "CASTLE_CHECKSUM_MISMATCH", data: { expected: wrong, actual: sha256(archives.gz) } });
      const message = (error as Error).message;
      expect(message).toContain(`${server.url}/p.tar.gz`);
      expect(message).toContain(wrong);
      expect(message).toContain(sha256(archives.gz));
      expect(readdirSync(store.dir("downloads"))).toEqual([]);
      expect(readdirSync(store.dir("tmp"))).toEqual([]);
      expect(store.records()).toEqual([]);
    });
  });

  it("reports a truncated download and leaves nothing partial", async () => {
    const body = archives.xz;
    const server = await startHttpServer((_req, res) => {
      res.setHeader("content-length", body.length);
      res.write(body.subarray(0, body.length >> 1), () => res.destroy());
    });
    try {
      const store = tempStore(temp);
      const src = source.http({ url: `${server.url}/p.tar.xz`, sha256: sha256(body) });
      const error = await realizeSource(src, sourceContext(store)).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "CASTLE_FETCH_FAILED" });
      expect((error as Error).message).toMatch(/truncated/);
      expect(readdirSync(store.dir("downloads"))).toEqual([]);
      expect(readdirSync(store.dir("tmp"))).toEqual([]);
      expect(store.records()).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it("tries mirrors in order until one serves the right bytes, and lists every failure otherwise", async () => {
    const files = new Map([["/good.tar.gz", archives.gz], ["/wrong.tar.gz", archives.xz]]);
    await withServer(files, async (server) => {
      const refused = `http://127.0.0.1:${await refusedPort()}/p.tar.gz`;
      const mirrors = [refused, `${server.url}/wrong.tar.gz`, `${server.url}/good.tar.gz`];
      const src = source.http({ url: `${server.url}/missing.tar.gz`, sha256: sha256(archives.gz), mirrors });
      const store = tempStore(temp);
      checkTree(store.treePath(await realizeSource(src, sourceContext(store))));
      expect(server.requests).toEqual(["/missing.tar.gz", "/wrong.tar.gz", "/good.tar.gz"]);

      const bad = source.http({ url: `${server.url}/missing.tar.gz`, sha256: sha256(archives.gz), mirrors: mirrors.slice(0, 2) });
      const error = await realizeSource(bad, sourceContext(tempStore(temp))).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "CASTLE_FETCH_FAILED" });
      const message = (error as Error).message;
      expect(message).toContain(`${server.url}/missing.tar.gz: HTTP 404`);
      expect(message).toContain(`${refused}: connection refused`);
      expect(message).toContain(`${server.url}/wrong.tar.gz: checksum mismatch: got sha256 ${sha256(archives.xz)}`);
    });
  });

  it("uses CASTLE_MIRRORS first: a hashed mirror directory, and prefix rewrites", async () => {
    await withServer(new Map([["/p.tar.gz", archives.gz], ["/alt/p.tar.gz", archives.gz]]), async (server) => {
      const mirror = temp("mirror");
      mkdirSync(join(mirror, "sha256"));
      writeFileSync(join(mirror, "sha256", sha256(archives.gz)), archives.gz);
      const src = source.http({ url: `${server.url}/p.tar.gz`, sha256: sha256(archives.gz) });
      const store = tempStore(temp);
      const env = { PATH: process.env.PATH, CASTLE_MIRRORS: `  ${mirror}\n` };
      checkTree(store.treePath(await realizeSource(src, sourceContext(store, { env }))));
      expect(server.requests).toEqual([]);

      const rewrite = { PATH: process.env.PATH, CASTLE_MIRRORS: `${server.url}/=${server.url}/alt/` };
      await realizeSource(src, sourceContext(tempStore(temp), { env: rewrite }));
      expect(server.requests).toEqual(["/alt/p.tar.gz"]);
    });
  });

  it("downloads once when two realizations of one source race", async () => {
    await withServer(new Map([["/p.tar.bz2", archives.bz2]]), async (server) => {
      const store = tempStore(temp);
      const src = source.http({ url: `${server.url}/p.tar.bz2`, sha256: sha256(archives.bz2) });
      const [a, b] = await Promise.all([realizeSource(src, sourceContext(store)), realizeSource(src, sourceContext(store))]);
      expect(a).toBe(b);
      expect(server.requests).toEqual(["/p.tar.bz2"]);
      expect(store.records()).toHaveLength(1);
    });
  });

  it("downloads once when two processes realize one source at once", async () => {
    const body = archives.gz;
    const server = await startHttpServer((_req, res) => {
      // Slow enough that both processes are inside realizeSource together.
      res.setHeader("content-length", body.length);
      setTimeout(() => res.end(body), 800);
    });
    try {
      const storeDir = tempStore(temp).root;
      const child = join(import.meta.dirname, "helpers/realize-child.ts");
      const run = () =>
        new Promise<string>((resolve, reject) =>
          execFile(process.execPath, ["--import", "tsx", child, storeDir, `${server.url}/p.tar.gz`, sha256(body)], (error, stdout) =>
            error ? reject(error) : resolve(stdout),
          ),
        );
      const [a, b] = await Promise.all([run(), run()]);
      expect(a).toMatch(/^[0-9a-f]{64}$/);
      expect(b).toBe(a);
      expect(server.requests).toEqual(["/p.tar.gz"]);
    } finally {
      await server.close();
    }
  });

  it("gives up on a stalled server after the idle timeout, and stops at once when aborted", async () => {
    const server = await startHttpServer((_req, res) => {
      res.setHeader("content-length", 1000);
      res.write("partial");
    });
    try {
      const src = source.http({ url: `${server.url}/p.tar.gz`, sha256: sha256(archives.gz) });
      const store = tempStore(temp);
      const slow = await realizeSource(src, sourceContext(store, { timeoutMs: 300 })).catch((e: unknown) => e);
      expect(slow).toMatchObject({ code: "CASTLE_FETCH_FAILED" });
      expect((slow as Error).message).toMatch(/timed out/);
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 200);
      const aborted = await realizeSource(src, sourceContext(store, { signal: controller.signal })).catch((e: unknown) => e);
      expect(aborted).toMatchObject({ code: "CASTLE_CANCELLED" });
      expect(readdirSync(store.dir("downloads"))).toEqual([]);
    } finally {
      await server.close();
    }
  });
});

describe("hostile archives", () => {
  type Member = { name: string; type?: "file" | "symlink" | "character-device"; linkname?: string; body?: string };
  async function tarOf(members: Member[]): Promise<Buffer> {
    const pack = tarStream.pack();
    for (const m of members) {
      const header = { name: m.name, type: m.type ?? "file", mode: 0o644, ...(m.linkname ? { linkname: m.linkname } : {}) };
      if (m.type === "character-device") Object.assign(header, { devmajor: 1, devminor: 3 });
      pack.entry(header, m.body ?? "");
    }
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of pack) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async function realizeFile(body: Buffer): Promise<{ error: unknown; store: ReturnType<typeof tempStore> }> {
    const dir = temp("hostile");
    writeFileSync(join(dir, "a.tar"), body);
    const store = tempStore(temp);
    const src = source.http({ url: `file://${dir}/a.tar`, sha256: sha256(body) });
    const error = await realizeSource(src, sourceContext(store)).then(
      () => undefined,
      (e: unknown) => e,
    );
    return { error, store };
  }

  it("refuses ../ members, writes through symlinks and device nodes; keeps absolute names inside", async () => {
    const outside = temp("outside");
    const cases: Array<{ members: Member[]; code: string | undefined }> = [
      { members: [{ name: "top/ok" }, { name: "top/../../escaped", body: "x" }], code: "CASTLE_EXTRACT_FAILED" },
      { members: [{ name: "top/evil", type: "symlink", linkname: outside }, { name: "top/evil/pwned", body: "x" }], code: "CASTLE_EXTRACT_FAILED" },
      { members: [{ name: "top/evil", type: "symlink", linkname: "../../../.." }, { name: "top/evil/pwned2", body: "x" }], code: "CASTLE_EXTRACT_FAILED" },
      { members: [{ name: "top/null", type: "character-device" }], code: process.getuid?.() === 0 ? "CASTLE_ARCHIVE_UNSAFE" : "CASTLE_EXTRACT_FAILED" },
      { members: [{ name: `${outside}/abs`, body: "x" }], code: undefined },
    ];
    for (const { members, code } of cases) {
      const { error, store } = await realizeFile(await tarOf(members));
      if (code) expect(error, members.map((m) => m.name).join(" ")).toMatchObject({ code });
      else expect(error).toBeUndefined();
      expect(readdirSync(outside)).toEqual([]);
      expect(readdirSync(store.dir("tmp"))).toEqual([]);
      expect(readdirSync(store.root).sort()).toEqual(["downloads", "keys", "locks", "logs", "tmp", "trees"]);
    }
  });
});
