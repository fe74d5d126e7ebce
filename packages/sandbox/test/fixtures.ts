// Owns what the sandbox tests share: busybox root filesystems and layer dirs that an unprivileged
// user can read, the two callers every isolation test runs as (this process, and uid 65534),
// small C probes compiled on demand, and skip reasons taken from the helper's own --probe.

import { execFileSync, spawn as spawnChild } from "node:child_process";
import {
  chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { helperPath, probe, ROOT_CALLER_ID, type SandboxSupport } from "../src/index";

export const BUSYBOX = "/bin/busybox";

/** Who runs the helper: this process, or uid/gid 65534 through `asUser` (needs root). */
export interface Caller {
  name: string;
  asUser?: { uid: number; gid: number };
  uid: number;
}

const self: Caller = { name: `caller (uid ${process.getuid?.() ?? -1})`, uid: process.getuid?.() ?? -1 };
const nobody: Caller = { name: "uid 65534", asUser: { uid: 65534, gid: 65534 }, uid: 65534 };

/** Every isolation test runs once per entry (`describe.each(CALLERS)`). */
export const CALLERS: Caller[] = [self, nobody];

/**
 * The host uid (and gid) root inside this caller's sandbox runs as: the caller itself, or for
 * root the unprivileged ROOT_CALLER_ID (see helper/shift.c).
 */
export function hostIdOfRoot(caller: Caller): number {
  return caller.uid === 0 ? ROOT_CALLER_ID : caller.uid;
}

/** Why this caller cannot be used here, or undefined. */
export function callerMissing(caller: Caller): string | undefined {
  if (caller.asUser && process.getuid?.() !== 0) return "switching to uid 65534 needs root";
  return undefined;
}

const supportCache = new Map<string, Promise<SandboxSupport>>();

/** The helper's --probe, as this caller (one per test file and caller). */
export function support(caller: Caller): Promise<SandboxSupport> {
  let cached = supportCache.get(caller.name);
  if (!cached) {
    cached = probe(caller.asUser ? { asUser: caller.asUser } : {});
    supportCache.set(caller.name, cached);
  }
  return cached;
}

/** A temp dir every user can read and enter (mkdtemp makes 0700). Removed by `cleanup()`. */
export function tempDir(prefix = "castle-sandbox-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  created.push(dir);
  return dir;
}

const created: string[] = [];

export function cleanup(): void {
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true });
  xattrTool = undefined;
}

/** An empty dir owned by the caller (for uppers and work dirs). */
export function ownedDir(parent: string, name: string, caller: Caller): string {
  const dir = join(parent, name);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (caller.asUser) chownSync(dir, caller.asUser.uid, caller.asUser.gid);
  return dir;
}

/**
 * A busybox rootfs in parent/name: /bin/busybox and every applet as a symlink, plus /etc, /root
 * and (unless `bare`) the mount points /proc, /dev, /tmp.
 */
export function makeRootfs(parent: string, name = "rootfs", options: { bare?: boolean } = {}): string {
  const root = join(parent, name);
  const dirs = ["bin", "etc", "root", "usr/bin", ...(options.bare ? [] : ["proc", "dev", "tmp"])];
  for (const dir of dirs) mkdirSync(join(root, dir), { recursive: true, mode: 0o755 });
  chmodSync(root, 0o755);
  copyFileSync(BUSYBOX, join(root, "bin/busybox"));
  chmodSync(join(root, "bin/busybox"), 0o755);
  const applets = execFileSync(BUSYBOX, ["--list"], { encoding: "utf8" }).split("\n").filter(Boolean);
  for (const applet of applets) if (applet !== "busybox") symlinkSync("busybox", join(root, "bin", applet));
  writeFileSync(join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
  return root;
}

/** A layer dir with the given files (path -> content), readable by everyone, owned by owner. */
export function makeLayer(parent: string, name: string, files: Record<string, string>, owner?: Caller): string {
  const layer = join(parent, name);
  mkdirSync(layer, { recursive: true, mode: 0o755 });
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(layer, path, ".."), { recursive: true, mode: 0o755 });
    writeFileSync(join(layer, path), content, { mode: 0o644 });
  }
  if (owner?.asUser) execFileSync("chown", ["-R", `${owner.asUser.uid}:${owner.asUser.gid}`, layer]);
  return layer;
}

export function busyboxMissing(): string | undefined {
  return existsSync(BUSYBOX) ? undefined : "busybox-static is not installed (apt install busybox-static)";
}

/** A static C compiler for probes that run inside the rootfs, or undefined. */
function staticCompiler(): string | undefined {
  for (const cc of ["musl-gcc", "gcc", "cc"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${cc}`], { stdio: "ignore" });
      return cc;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

/** Compiles a static C program into dest (mode 0755); returns a skip reason on failure. */
export function compileStatic(source: string, dest: string): string | undefined {
  const cc = staticCompiler();
  if (!cc) return "no C compiler (apt install musl-tools or build-essential)";
  const file = `${dest}.c`;
  writeFileSync(file, source);
  try {
    execFileSync(cc, ["-static", "-O2", "-o", dest, file], { stdio: "pipe" });
    chmodSync(dest, 0o755);
    return undefined;
  } catch (error) {
    return `cannot compile a static program with ${cc}: ${(error as Error).message}`;
  } finally {
    rmSync(file, { force: true });
  }
}

const XATTR_TOOL = `
#include <stdio.h>
#include <sys/xattr.h>
int main(int argc, char **argv) {
  char buf[256];
  ssize_t n = lgetxattr(argv[1], argv[2], buf, sizeof buf - 1);
  if (n < 0) { perror("getxattr"); return 1; }
  buf[n] = 0;
  printf("%s", buf);
  return 0;
}
`;
let xattrTool: string | undefined;

/** The value of an extended attribute (e.g. user.overlay.opaque), or undefined when it is unset. */
export function getXattr(path: string, name: string): string | undefined {
  if (!xattrTool) {
    const tool = join(tempDir("castle-xattr-"), "getxattr");
    const problem = compileStatic(XATTR_TOOL, tool);
    if (problem) throw new Error(problem);
    xattrTool = tool;
  }
  try {
    return execFileSync(xattrTool, [path, name], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return undefined;
  }
}

export interface HelperResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The JSON status lines, parsed. */
  status: Record<string, unknown>[];
}

/**
 * Runs the helper directly, without the TS API: raw spec bytes on fd 3, status on fd 4, and
 * `extraFds` more pipes (fds 5, 6, ...) that are inherited without CLOEXEC.
 */
export function runHelper(
  spec: Uint8Array | string,
  options: { env?: NodeJS.ProcessEnv; extraFds?: number; asUser?: { uid: number; gid: number } } = {},
): Promise<HelperResult> {
  const extra = Array.from({ length: options.extraFds ?? 0 }, () => "pipe" as const);
  const child = spawnChild(helperPath(), ["--spec-fd", "3", "--status-fd", "4"], {
    stdio: ["ignore", "pipe", "pipe", "pipe", "pipe", ...extra],
    cwd: "/",
    env: options.env ?? process.env,
    ...(options.asUser ? { uid: options.asUser.uid, gid: options.asUser.gid } : {}),
  });
  const specPipe = child.stdio[3] as Writable;
  specPipe.on("error", () => {});
  specPipe.end(spec);
  return new Promise((resolve, reject) => {
    let stdout = "";
    let stderr = "";
    let status = "";
    child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk));
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk));
    (child.stdio[4] as Readable).on("data", (chunk: Buffer) => (status += chunk));
    child.on("error", reject);
    child.on("close", (code, signal) =>
      resolve({
        code, signal, stdout, stderr,
        status: status.split("\n").filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>),
      }),
    );
  });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether pid has exited within ms (a zombie counts: its parent may be a slow-reaping host init). */
export async function gone(pid: number, ms = 3000): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 20) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) return true;
    } catch {
      return true;
    }
    await sleep(20);
  }
  return false;
}
