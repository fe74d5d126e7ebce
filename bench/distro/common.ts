// Owns what the distro benchmarks share: a bench directory that survives between them
// ($CASTLE_BENCH_DISTRO_DIR, default /tmp/castle-bench-distro), the pinned files downloaded once
// into it — as a hashed mirror that Castle reads through CASTLE_MIRRORS and as named files for
// the plain script — so that neither side's timing includes the network, the castle CLI run
// with a store there, and the plain script (plain-build.sh) as the peer.

import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import lock from "../../examples/distro/bootstrap/debs.lock.json";
import { debianMirrors } from "../../examples/distro/mirrors";
import { TARBALLS } from "../../examples/distro/tarballs";
import { debianMirrorProblem } from "../../test/e2e/helpers/debian-mirror";
import { CASTLE, ensureBundle } from "../lib/castle-cli";

export const ROOT = resolve(import.meta.dirname, "../..");
export const DISTRO = join(ROOT, "examples/distro");
export const BENCH_DIR = process.env.CASTLE_BENCH_DISTRO_DIR ?? "/tmp/castle-bench-distro";
/** The musl patch of the README (RIP <status> on every exit). */
export const RIP_EXIT_C = readFileSync(join(DISTRO, "patches/rip-exit.c"), "utf8");

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command to completion, timing it (wall clock, from spawn to exit). */
export function run(file: string, args: string[], env: NodeJS.ProcessEnv = process.env, cwd = ROOT): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const started = performance.now();
    const child = spawn(file, args, { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolvePromise({ code, stdout, stderr, ms: performance.now() - started }));
  });
}

/** Why the distro benchmarks cannot run here (printed, and they report no rows), or undefined. */
export async function distroBenchProblem(): Promise<string | undefined> {
  if (process.platform !== "linux") return "Linux only";
  for (const tool of ["dpkg-deb", "unshare"]) {
    if (!["/usr/bin", "/bin", "/usr/sbin"].some((d) => existsSync(join(d, tool)))) return `${tool} is not installed`;
  }
  return debianMirrorProblem();
}

/**
 * Downloads every pinned file once (verified) into BENCH_DIR/mirror/sha256/<hex>, and links
 * them as BENCH_DIR/files/debs/<name>.deb and files/src/<package>.tar.* for the plain script.
 */
export async function prepareFiles(): Promise<{ mirror: string; files: string }> {
  const mirror = join(BENCH_DIR, "mirror");
  const files = join(BENCH_DIR, "files");
  mkdirSync(join(mirror, "sha256"), { recursive: true });
  rmSync(files, { recursive: true, force: true });
  mkdirSync(join(files, "debs"), { recursive: true });
  mkdirSync(join(files, "src"), { recursive: true });
  const mirrors = debianMirrors();
  const wanted = [
    ...lock.packages.map((p) => ({
      sha256: p.sha256,
      urls: (p.archive === "security" ? mirrors.security : mirrors.main).map((b) => `${b}/${encodeURI(p.path)}`),
      link: join(files, "debs", p.path.split("/").pop()!),
    })),
    ...Object.entries(TARBALLS).map(([pkg, t]) => ({
      sha256: t.sha256,
      urls: mirrors.main.map((b) => `${b}/${t.pool}`),
      link: join(files, "src", `${pkg}.tar${t.pool.replace(/.*\.tar/, "")}`),
    })),
  ];
  // A few at a time: a hundred parallel look-ups time out on some resolvers.
  for (let i = 0; i < wanted.length; i += 6) {
    await Promise.all(
      wanted.slice(i, i + 6).map(async (w) => {
        const target = join(mirror, "sha256", w.sha256);
        if (!existsSync(target)) await download(w.urls, w.sha256, target);
        symlinkSync(target, w.link);
      }),
    );
  }
  return { mirror, files };
}

async function download(urls: string[], sha256: string, target: string): Promise<void> {
  const errors: string[] = [];
  for (const url of urls) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(60_000) });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const body = Buffer.from(await response.arrayBuffer());
      const got = createHash("sha256").update(body).digest("hex");
      if (got !== sha256) throw new Error(`sha256 ${got}, expected ${sha256}`);
      writeFileSync(target, body);
      return;
    } catch (error) {
      errors.push(`${url}: ${(error as Error).message}`);
    }
  }
  throw new Error(`cannot download ${sha256}: ${errors.join("; ")}`);
}

/** The environment of a castle command with its own store and state under dir, reading the mirror. */
export function castleEnv(dir: string, mirror: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    CASTLE_CACHE_DIR: join(dir, "cache"),
    CASTLE_STATE_DIR: join(dir, "state"),
    CASTLE_DATA_DIR: join(dir, "data"),
    CASTLE_MIRRORS: mirror,
    CI: "1",
  };
}

/** `castle args...` with the bundled CLI; throws with its stderr when it fails unexpectedly. */
export async function castle(args: string[], env: NodeJS.ProcessEnv, expectCode = 0): Promise<Run> {
  ensureBundle();
  const result = await run(process.execPath, [CASTLE, ...args], env);
  if (result.code !== expectCode) {
    throw new Error(`castle ${args.join(" ")} exited ${result.code} (expected ${expectCode}):\n${result.stderr.slice(-4000)}`);
  }
  return result;
}

/** Runs plain-build.sh into work; returns its wall time and its phase line. */
export async function plainBuild(work: string, files: string): Promise<Run & { phases: string }> {
  const result = await run("bash", [join(ROOT, "bench/distro/plain-build.sh"), work, files]);
  if (result.code !== 0) throw new Error(`plain-build.sh failed (${result.code}):\n${(result.stdout + result.stderr).slice(-4000)}`);
  return { ...result, phases: result.stdout.match(/^plain: unpack-s.*$/m)?.[0] ?? "" };
}

/** Layer names by outcome in `--plain` output (`[ 3/10] built musl in 4.0s`; `imported`, said of
 * a layer whose source was fetched, counts as built). */
export function outcomes(stderr: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const m of stderr.matchAll(/^\[\s*\d+\/\d+\] (\w+) ([\w.-]+)/gm)) (out[m[1] === "imported" ? "built" : m[1]!] ??= []).push(m[2]!);
  return out;
}
