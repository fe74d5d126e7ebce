// Owns the cgroups a sandbox's limits live in: where each controller is mounted (cgroup v2, or a
// v1 hierarchy), which dir this process is in there, one child dir per sandbox and hierarchy
// (`castle-<pid>-<n>`) with its limits written, the counters that tell a limit was hit, and
// removing the dirs afterwards — with any that a killed Castle left behind.

import { chownSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { processAlive } from "./process-alive";

export type Controller = "pids" | "memory" | "cpu";

/** Where a controller lives for this process: its own dir in that hierarchy. */
export interface ControllerHome {
  controller: Controller;
  version: 1 | 2;
  /** This process's cgroup dir in the hierarchy (the parent of the sandboxes' dirs). */
  dir: string;
}

interface Mount {
  version: 1 | 2;
  root: string;
  mountPoint: string;
  controllers: string[];
}

function mounts(): Mount[] {
  const out: Mount[] = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const fields = line.split(" ");
    const dash = fields.indexOf("-");
    if (dash < 0) continue;
    const type = fields[dash + 1];
    if (type !== "cgroup" && type !== "cgroup2") continue;
    out.push({
      version: type === "cgroup2" ? 2 : 1,
      root: unescape(fields[3]!),
      mountPoint: unescape(fields[4]!),
      controllers: (fields[dash + 3] ?? "").split(","),
    });
  }
  return out;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescape(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** This process's path in the hierarchy with these controllers ("" for v2), from /proc/self/cgroup. */
function ownPath(lines: string[], version: 1 | 2, controllers: string[]): string | undefined {
  for (const line of lines) {
    const [, names, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (path === undefined) continue;
    if (version === 2 ? names === "" : names!.split(",").some((name) => controllers.includes(name))) return path;
  }
  return undefined;
}

/** The cgroup mounts and this process's place in them: read once per process (they do not change
 * while Castle runs, and a busy machine's mountinfo is long). */
let layout: { all: Mount[]; lines: string[] } | { why: string } | undefined;

function cgroupLayout(): { all: Mount[]; lines: string[] } | { why: string } {
  if (layout) return layout;
  try {
    layout = { all: mounts(), lines: readFileSync("/proc/self/cgroup", "utf8").split("\n") };
  } catch (error) {
    layout = { why: `cannot read this process's cgroups: ${(error as Error).message}` };
  }
  return layout;
}

/**
 * Where `controller` can hold a sandbox of this process's, or why it cannot (the reason names
 * the hierarchy and the uid, for the caller's one-line warning).
 */
export function controllerHome(controller: Controller, uid: number): ControllerHome | { why: string } {
  const known = cgroupLayout();
  if ("why" in known) return known;
  const { all, lines } = known;
  const v1 = all.find((m) => m.version === 1 && m.controllers.includes(controller));
  const v2 = all.find((m) => m.version === 2);
  const mount = v1 ?? v2;
  if (!mount) return { why: "no cgroup hierarchy is mounted" };
  const path = ownPath(lines, mount.version, mount.controllers);
  if (path === undefined) return { why: `this process is in no ${controller} cgroup` };
  const relative = path.startsWith(mount.root) ? path.slice(mount.root === "/" ? 0 : mount.root.length) : path;
  const dir = join(mount.mountPoint, relative).replace(/(.)\/+$/, "$1");
  if (mount.version === 2) {
    const enabled = readList(join(dir, "cgroup.subtree_control"));
    if (!enabled.includes(controller)) {
      return { why: readList(join(dir, "cgroup.controllers")).includes(controller)
        ? `the ${controller} controller is not enabled for children of ${dir} (not delegated to uid ${uid})`
        : `no ${controller} controller in cgroup v2 at ${dir}, nor in a v1 hierarchy` };
    }
  }
  return { controller, version: mount.version, dir };
}

function readList(path: string): string[] {
  try {
    return readFileSync(path, "utf8").trim().split(/\s+/);
  } catch {
    return [];
  }
}

let created = 0;
const swept = new Set<string>();

/**
 * Creates this sandbox's dir under `parent` (readable as a reason when it cannot); gives it to
 * `owner` when the helper runs as another user, so it may move its init there.
 */
export function createCgroup(parent: string, owner?: { uid: number; gid: number }): string | { why: string } {
  if (!swept.has(parent)) {
    swept.add(parent);
    sweepStale(parent);
  }
  const dir = join(parent, `castle-${process.pid}-${created++}`);
  try {
    mkdirSync(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const who = `uid ${process.getuid?.() ?? "?"}`;
    return { why: code === "EACCES" || code === "EPERM" || code === "EROFS" ? `${parent} is not writable by ${who}` : `cannot create a cgroup in ${parent}: ${(error as Error).message}` };
  }
  if (owner && owner.uid !== process.getuid?.()) {
    for (const path of [dir, join(dir, "cgroup.procs")]) chownSync(path, owner.uid, owner.gid);
  }
  return dir;
}

/** Writes one control file of a sandbox's cgroup. */
export function writeControl(dir: string, file: string, value: string): void {
  writeFileSync(join(dir, file), value);
}

/** Whether the control file exists (e.g. memory.memsw.* only with swap accounting). */
export function hasControl(dir: string, file: string): boolean {
  try {
    readFileSync(join(dir, file));
    return true;
  } catch {
    return false;
  }
}

/** The number after `key` in a flat-keyed control file ("max 3", "oom_kill 1"), 0 if absent. */
export function readCounter(dir: string, file: string, key: string): number {
  try {
    const line = readFileSync(join(dir, file), "utf8").split("\n").find((l) => l.startsWith(`${key} `));
    return line ? Number(line.slice(key.length + 1)) || 0 : 0;
  } catch {
    return 0;
  }
}

/**
 * Removes a sandbox's cgroup dir. Its processes leave it as the kernel reaps them, shortly after
 * the sandbox's init has gone, so a busy dir is tried again for up to `ms`; one still busy is
 * left for the next Castle to sweep (see sweepStale).
 */
export async function removeCgroup(dir: string, ms = 2000): Promise<void> {
  for (let waited = 0; ; waited += 10) {
    try {
      rmdirSync(dir);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (code !== "EBUSY" || waited >= ms) return;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Removes the dirs that Castles which are gone (killed mid-run) left in parent; createCgroup
 * does so once per parent and process. */
export function sweepStale(parent: string): void {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(/^castle-(\d+)-\d+$/.exec(name)?.[1]);
    if (!pid || processAlive(pid)) continue;
    try {
      rmdirSync(join(parent, name));
    } catch {
      // Still has processes (a sandbox outliving its Castle), or not ours to remove.
    }
  }
}
