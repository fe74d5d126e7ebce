// Owns running the real bundled `castle` binary for the CLI e2e tests, as an unprivileged user
// (uid 65534 through setpriv when the tests run as root; the caller itself otherwise): a private
// snapshot of packages/cli/dist (other engineers rebuild the shared one at any moment) and of the
// runtime beside it (packages/cli/runtime, ~120 MB: hard links, not copies, where it can), a home
// owned by that user with its XDG dirs, and per-command results with output and timing.

import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { removeTree } from "@castle/cache";
import { reachableByOthers, stageExternals } from "../../fixtures/reachable";
import { busyboxMissing, makeBusyboxRootfs } from "../../fixtures/rootfs";

export const ROOT = resolve(import.meta.dirname, "../../..");
const DIST = join(ROOT, "packages/cli/dist");
const RUNTIME = join(ROOT, "packages/cli/runtime");

/** Why systems cannot have Castle inside here (no runtime was built), or undefined. */
export function runtimeMissing(): string | undefined {
  return existsSync(join(RUNTIME, "castle-runtime.json"))
    ? undefined
    : "Castle's runtime (packages/cli/runtime) was not built: apt install patchelf, then npm run build";
}

/** The user every castle command runs as when the tests run as root. */
export const NOBODY = { uid: 65534, gid: 65534 };
export const IS_ROOT = process.getuid?.() === 0;

/** Why the CLI e2e tests cannot run here, or undefined. */
export function cliMissing(): string | undefined {
  if (process.platform !== "linux") return "Castle runs on Linux only";
  if (IS_ROOT && !existsSync("/usr/bin/setpriv") && !existsSync("/bin/setpriv")) return "setpriv (util-linux) is needed to drop to uid 65534";
  return busyboxMissing();
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  /** Extra environment (over the home's XDG dirs and a plain PATH). */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Written to stdin, which is then closed. Default: stdin is /dev/null. */
  input?: string;
  /** Killed (SIGKILL) after this long. Default 60 s. */
  timeoutMs?: number;
  /** Start the `castle` bin itself (the native launcher, dist/castle) instead of node on castle.cjs. */
  bin?: boolean;
}

/** A command started in the background (see CliHome.start). */
export interface Started {
  child: ChildProcess;
  readonly stdout: string;
  readonly stderr: string;
  exited: Promise<CliResult>;
  /** Resolves once stdout+stderr match, rejects after ms (with what was seen). */
  waitFor(pattern: RegExp, ms?: number): Promise<void>;
}

/**
 * One test file's world: a temp dir every user can enter, the private CLI snapshot, a busybox
 * rootfs, and any number of homes (stores) owned by the unprivileged user.
 */
export class CliWorld {
  readonly base: string;
  readonly castle: string;
  private rootfsDir?: string;
  readonly timings: { args: string; ms: number }[] = [];
  private readonly started = Date.now();

  private constructor(base: string, castle: string) {
    this.base = base;
    this.castle = castle;
  }

  /** Builds the bundle if it is missing, then snapshots it into a fresh temp dir. */
  static create(): CliWorld {
    const base = mkdtempSync(join(tmpdir(), "castle-e2e-cli-"));
    chmodSync(base, 0o755);
    return new CliWorld(base, snapshotBundle(join(base, "cli")));
  }

  /** A busybox rootfs (base/rootfs) shared by the file's definitions: one directory, one key. */
  get rootfs(): string {
    if (!this.rootfsDir) {
      this.rootfsDir = join(this.base, "rootfs");
      renameSync(makeBusyboxRootfs(this.base), this.rootfsDir);
    }
    return this.rootfsDir;
  }

  /** A new home: the store, state and data dirs all start empty. `caller`: castle runs in it as
   * the test's own user (root, when the tests run as root) instead of the unprivileged one. */
  home(name = "home", options: { caller?: boolean } = {}): CliHome {
    const dir = join(this.base, name);
    mkdirSync(dir);
    if (!options.caller) giveToUser(dir);
    return new CliHome(this, dir, Boolean(options.caller));
  }

  /** A directory (under base) holding these files, readable by the unprivileged user. */
  dir(name: string, files: Record<string, string> = {}): string {
    const dir = join(this.base, name);
    mkdirSync(dir, { recursive: true });
    writeFiles(dir, files);
    return dir;
  }

  /** Writes a dir that the unprivileged user owns (for what it must write, e.g. an OCI export). */
  ownedDir(name: string): string {
    const dir = join(this.base, name);
    mkdirSync(dir, { recursive: true });
    giveToUser(dir);
    return dir;
  }

  record(args: string[], ms: number): void {
    this.timings.push({ args: args.join(" "), ms });
  }

  /** Prints the file's command timings and removes everything. */
  dispose(label: string): void {
    const total = this.timings.reduce((sum, t) => sum + t.ms, 0);
    const slowest = [...this.timings].sort((a, b) => b.ms - a.ms).slice(0, 3);
    console.log(
      `[timing] ${label}: ${this.timings.length} castle commands, ${(total / 1000).toFixed(1)} s in castle, ` +
        `${((Date.now() - this.started) / 1000).toFixed(1)} s in all; slowest: ` +
        slowest.map((t) => `${(t.ms / 1000).toFixed(2)} s \`castle ${t.args.slice(0, 60)}\``).join(", "),
    );
    removeTree(this.base);
  }
}

/** A user's home with Castle's XDG dirs under it, and the ways to run castle in it. */
export class CliHome {
  constructor(
    readonly world: CliWorld,
    readonly dir: string,
    /** castle runs as the test's own user here, not the unprivileged one. */
    readonly caller = false,
  ) {}

  get cacheDir(): string {
    return join(this.dir, ".cache/castle");
  }
  get stateDir(): string {
    return join(this.dir, ".local/state/castle");
  }
  get dataDir(): string {
    return join(this.dir, ".local/share/castle");
  }

  env(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {
      PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      HOME: this.dir,
      XDG_CACHE_HOME: join(this.dir, ".cache"),
      XDG_STATE_HOME: join(this.dir, ".local/state"),
      XDG_DATA_HOME: join(this.dir, ".local/share"),
      LANG: "C.UTF-8",
    };
    for (const [key, value] of Object.entries(extra)) {
      if (value === undefined) delete env[key];
      else env[key] = value;
    }
    return env;
  }

  /** argv that runs `castle args...` as the unprivileged user (through the bin with `bin`). */
  argv(args: string[], bin = false): [string, string[]] {
    const command = bin ? [join(dirname(this.world.castle), "castle"), ...args] : [process.execPath, this.world.castle, ...args];
    if (!IS_ROOT || this.caller) return [command[0]!, command.slice(1)];
    return ["setpriv", [`--reuid=${NOBODY.uid}`, `--regid=${NOBODY.gid}`, "--clear-groups", ...command]];
  }

  /** Runs castle to completion (asynchronously: servers in this process keep answering). */
  run(args: string[], options: RunOptions = {}): Promise<CliResult> {
    return this.start(args, options).exited;
  }

  /** Starts castle in the background. */
  start(args: string[], options: RunOptions = {}): Started {
    const [file, argv] = this.argv(args, options.bin);
    const at = Date.now();
    const child = spawn(file, argv, {
      cwd: options.cwd ?? this.world.base,
      env: this.env(options.env),
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    if (options.input !== undefined) child.stdin!.end(options.input);
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    const exited = new Promise<CliResult>((resolvePromise, reject) => {
      child.on("error", reject);
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        const ms = Date.now() - at;
        this.world.record(args, ms);
        resolvePromise({ code, signal, stdout, stderr, ms });
      });
    });
    return {
      child,
      get stdout() {
        return stdout;
      },
      get stderr() {
        return stderr;
      },
      exited,
      async waitFor(pattern, ms = 15_000) {
        for (let waited = 0; ; waited += 25) {
          if (pattern.test(stdout + stderr)) return;
          if (waited >= ms || child.exitCode !== null || child.signalCode !== null) {
            if (pattern.test(stdout + stderr)) return;
            throw new Error(`waiting for ${pattern}: not seen in ${waited} ms; output so far:\n${stdout}${stderr}`);
          }
          await new Promise((r) => setTimeout(r, 25));
        }
      },
    };
  }
}

/** Writes files (creating parents), every one readable by every user. */
export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [path, content] of Object.entries(files)) {
    const file = join(dir, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content);
  }
  execFileSync("chmod", ["-R", "a+rX", dir]);
}

/** Makes path (recursively) the unprivileged user's, when we can. */
export function giveToUser(path: string): void {
  if (IS_ROOT) execFileSync("chown", ["-R", `${NOBODY.uid}:${NOBODY.gid}`, path]);
  else chmodSync(path, 0o755);
}

/**
 * Copies packages/cli/dist (built first if missing) into dir/dist, retrying when a concurrent
 * rebuild replaced it mid-copy, and links node_modules beside it for the one external (esbuild)
 * — or copies esbuild there when uid 65534 cannot reach the checkout (a clone under /root).
 * The runtime is snapshotted beside it as hard links (a rebuild makes new files, so the links keep
 * this one), and must hold the same bundle.
 */
function snapshotBundle(dir: string): string {
  if (!existsSync(join(DIST, "castle.cjs"))) {
    console.log("[cli e2e] packages/cli/dist/castle.cjs is missing: building it (npm run build)");
    execFileSync(process.execPath, [join(ROOT, "scripts/build.mjs")], { cwd: ROOT, stdio: "inherit" });
  }
  const target = join(dir, "dist");
  for (let attempt = 1; ; attempt++) {
    try {
      const before = statSync(join(DIST, "castle.cjs"));
      removeTree(target);
      cpSync(DIST, target, { recursive: true });
      const after = statSync(join(DIST, "castle.cjs"));
      if (before.ino !== after.ino || before.mtimeMs !== after.mtimeMs) throw new Error("the bundle was rebuilt while being copied");
      execFileSync(process.execPath, [join(target, "castle.cjs"), "--version"], { stdio: "ignore" });
      snapshotRuntime(join(dir, "runtime"), readFileSync(join(target, "core.cjs")));
      break;
    } catch (error) {
      if (attempt >= 10) throw new Error(`cannot snapshot ${DIST}: ${(error as Error).message}`);
      execFileSync("sleep", ["1"]);
    }
  }
  // The bundle's external (esbuild) must resolve for the unprivileged user too.
  if (reachableByOthers(join(ROOT, "node_modules"))) symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  else stageExternals(dir);
  execFileSync("chmod", ["-R", "a+rX", dir]);
  return join(target, "castle.cjs");
}

function snapshotRuntime(to: string, core: Buffer): void {
  removeTree(to);
  if (runtimeMissing()) return;
  try {
    execFileSync("cp", ["-al", RUNTIME, to], { stdio: "ignore" });
  } catch {
    removeTree(to);
    execFileSync("cp", ["-a", RUNTIME, to], { stdio: "ignore" });
  }
  const manifest = JSON.parse(readFileSync(join(to, "castle-runtime.json"), "utf8")) as { core: string };
  if (manifest.core !== createHash("sha256").update(core).digest("hex")) throw new Error("the runtime holds another build of the bundle");
}

/** castle.ts text: imports, a `base` layer importing the shared busybox rootfs, then body. */
export function definition(rootfs: string, body: string): string {
  return `import { layer, source, system } from "castle";\n` + `const base = layer.import({ name: "base", from: source.local(${JSON.stringify(rootfs)}) });\n` + body + "\n";
}

/** Text with terminal escape sequences and carriage returns removed. */
export function visible(text: string): string {
  return text.replace(/\x1b\[[0-?]*[ -/]*[@-~]/g, "").replace(/\x1b[()][0-9A-Za-z]/g, "").replace(/\r/g, "");
}
