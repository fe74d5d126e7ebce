// Test helper: runs the bundled `castle` binary the way users do — as an unprivileged user
// (uid 65534 through setpriv when the tests run as root) with HOME, the store, state and data
// dirs in a temp dir that user owns — and collects its exit status and output.

import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { processAlive } from "../../../packages/sandbox/src/index";
import { reachableByOthers, stageExternals } from "../../fixtures/reachable";

export const REPO = resolve(import.meta.dirname, "../../..");
const DIST = join(REPO, "packages/cli/dist");
const RUNTIME = join(REPO, "packages/cli/runtime");
const DIST_FILES = ["castle.cjs", "core.cjs", "api.mjs", "unpack-thread.cjs", "castle-sandbox", "castle-treeutil"];

/** The unprivileged user CLI cases run as when the suite runs as root. */
export const NOBODY = 65534;

let snapshot: string | undefined;

/**
 * Why CLI cases cannot run here, or undefined when they can. Other engineers rebuild the bundle
 * while tests run, so the tests use a private copy of it, taken once per test file (beside
 * node_modules, so its external packages still resolve), after waiting up to a minute for a
 * rebuild in progress to finish.
 */
export function cliMissing(): string | undefined {
  if (process.getuid?.() === 0 && !existsSync("/usr/bin/setpriv")) return "setpriv is missing, so CLI cases cannot drop to uid 65534";
  if (snapshot) return undefined;
  const deadline = Date.now() + 60_000;
  while (DIST_FILES.some((f) => !existsSync(join(DIST, f)))) {
    if (Date.now() > deadline) return `${DIST} is not built (npm run build)`;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
  }
  // Beside node_modules; or, when uid 65534 cannot reach the checkout, in a temp dir with its own
  // copy of the bundle's external packages.
  const inRepo = reachableByOthers(join(REPO, "node_modules"));
  const parent = inRepo ? join(REPO, "node_modules", ".castle-reliability") : join(tmpdir(), "castle-reliability-cli");
  mkdirSync(parent, { recursive: true, mode: 0o755 });
  chmodSync(parent, 0o755);

  // Copies of test processes that are gone (vitest may end its workers without "exit").
  for (const name of readdirSync(parent)) {
    const pid = Number(/^dist-(\d+)-/.exec(name)?.[1]);
    if (pid && !processAlive(pid)) rmSync(join(parent, name), { recursive: true, force: true });
  }
  const dir = join(parent, `dist-${process.pid}-${Date.now()}`);
  cpSync(DIST, dir, { recursive: true });
  if (!inRepo) stageExternals(dir);
  chmodSync(dir, 0o755);
  snapshot = dir;
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  return undefined;
}

/** The castle binary the CLI cases run (the private copy of the bundle). */
export function castleBin(): string {
  if (cliMissing() !== undefined || !snapshot) throw new Error("the castle bundle is not available");
  return join(snapshot, "castle.cjs");
}

export interface CliHome {
  /** The temp dir holding everything below; owned by the user castle runs as. */
  dir: string;
  home: string;
  /** CASTLE_CACHE_DIR: the store. */
  cache: string;
  state: string;
  data: string;
  /** The environment castle runs with (nothing inherited but PATH). */
  env: Record<string, string>;
}

/** A fresh home for castle (world-traversable parent, owned by the user castle runs as). */
export function makeCliHome(parent = tmpdir()): CliHome {
  const dir = mkdtempSync(join(parent, "castle-rel-cli-"));
  chmodSync(dir, 0o755);
  const home = join(dir, "home");
  const cache = join(dir, "cache");
  const state = join(dir, "state");
  const data = join(dir, "data");
  for (const d of [home, state, data]) mkdirSync(d);
  giveToRunner(dir);
  return {
    dir, home, cache, state, data,
    env: {
      PATH: "/usr/local/bin:/usr/bin:/bin",
      HOME: home,
      CASTLE_CACHE_DIR: cache,
      CASTLE_STATE_DIR: state,
      CASTLE_DATA_DIR: data,
      LANG: "C.UTF-8",
      // The bundle is a private copy; Castle's runtime (mounted into systems) stays where it was built.
      ...(existsSync(join(RUNTIME, "castle-runtime.json")) ? { CASTLE_RUNTIME_DIR: RUNTIME } : {}),
    },
  };
}

/** Makes path (recursively) belong to the user castle runs as. */
export function giveToRunner(path: string): void {
  if (process.getuid?.() !== 0) return;
  const visit = (p: string) => {
    chownSync(p, NOBODY, NOBODY);
    if (statSync(p).isDirectory()) for (const name of readdirSync(p)) visit(join(p, name));
  };
  visit(path);
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Kill the process (SIGKILL) after this long and fail. Default 60 s. */
  timeoutMs?: number;
  /** Run castle as this process's user (root, when the suite runs as root) instead of uid 65534. */
  asCaller?: boolean;
}

/** Starts `castle args…` (as uid 65534 when we are root, unless asCaller); the returned pid is castle's own. */
export function spawnCastle(home: CliHome, args: string[], options: CliOptions = {}): ChildProcess {
  const env = { ...home.env, ...options.env };
  const argv = [process.execPath, castleBin(), ...args];
  // setpriv execs node, so the child's pid is castle's pid (kill -9 hits castle itself).
  const [command, ...rest] = process.getuid?.() === 0 && !options.asCaller
    ? ["/usr/bin/setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", ...argv]
    : argv;
  return spawn(command!, rest, { env: env as NodeJS.ProcessEnv, cwd: options.cwd ?? home.dir, stdio: ["ignore", "pipe", "pipe"] });
}

/** Runs `castle args…` to completion. */
export function runCastle(home: CliHome, args: string[], options: CliOptions = {}): Promise<CliResult> {
  const child = spawnCastle(home, args, options);
  return collect(child, options.timeoutMs ?? 60_000, `castle ${args.join(" ")}`);
}

/** Waits for a castle child started with spawnCastle, collecting its output. */
export function collect(child: ChildProcess, timeoutMs: number, what = "castle"): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${what} did not finish in ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

/** The layers a run built, from its plain progress output ("building <layer> (<why>)"). */
export function builtLayers(stderr: string): string[] {
  return [...stderr.matchAll(/^building (\S+) \(/gm)].map((m) => m[1]!);
}

/** A readable summary of a run, for assertion messages. */
export function describeRun(result: CliResult): string {
  return `exit ${result.code}${result.signal ? ` (${result.signal})` : ""}\n--- stdout\n${result.stdout}--- stderr\n${result.stderr}`;
}
