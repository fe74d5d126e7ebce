// Owns what Castle mounts into a system it runs, and what it tells the system about it:
// - Castle itself: the runtime read-only at /.castle (with `castle` on PATH and linked from
//   /usr/local/bin), the nested Castle's own store, instances and systems at /.castle/state (on
//   the host's filesystem: overlayfs cannot use the system's overlay root as an upper dir), and
//   this Castle's store and its own lower tiers read-only at /.castle/stores/<n>, which the
//   Castle inside reads beneath its own (one store for the whole nest; nothing inside can write
//   to them);
// - the definition it was started from, writable at ~/castle-src (the default of the Castle
//   inside), and the edited sources' directory at ~/src;
// - the host's /etc/resolv.conf and /etc/hosts (read-only) when the system shares the host's
//   network and does not ship its own;
// - the user's --mount binds.
// Every mount point is made in a bottom layer of its own (mount-points.ts): none is written into
// the system's files. `--no-castle` (or `castle: false` in the definition) leaves out the first two.

import { existsSync, lstatSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { MountSpec } from "@castle/sandbox";
import { NESTED_DIRS } from "../context/system-state";
import type { DefinitionTree } from "./definition-tree";
import { hostPath, insideInfo, type InsideInfo } from "./inside-info";
import { mountPointLayer, type MountPointEntry } from "./mount-points";
import type { ReservedPath, UserMount } from "./mount-flags";
import {
  CASTLE_COMMAND, CASTLE_LINK, CASTLE_MOUNT, LOWER_STORE_MOUNTS, locateRuntime, lowerStoreMount, NESTED_STATE, RUNTIME_MARKER,
} from "./runtime";

export interface SystemMountsRequest {
  /** Mount Castle, the definition and the edited sources (false: --no-castle). */
  castle: boolean;
  network: "host" | "none";
  userMounts: UserMount[];
  /** The system's layers (bottom first) and upper dir: what it ships itself. */
  lowers: string[];
  upper: string;
  /** The system's state dir (persistent or ephemeral) and the nested Castle's dir in it. */
  systemDir: string;
  nestedCastle: string;
  /** HOME inside the system. */
  home: string;
  /** This Castle's data dir (for the mount-point layers). */
  dataDir: string;
  /** This Castle's store and its own lower tiers, nearest first. */
  stores: string[];
  definition?: DefinitionTree;
  instance: string;
  /** The `castle run` arguments naming the definition (for `castle edit --where`'s hint). */
  run: string[];
  importCaches: string[];
  /** The trusted public keys in effect here (flag, env or config file), passed in as settings. */
  trustedKeys: string[];
}

export interface SystemMounts {
  /** The bottom layer holding every mount point. */
  bottom: string;
  mounts: MountSpec[];
  env: Record<string, string>;
  /** What `castle ps` needs to say where the system's edited sources live on the host. */
  inside?: { edits: string; hostPaths: Record<string, string> };
  notes: string[];
  /** The directories made for this run (mkdir -p), and what the mounts depended on beyond the
   * layers (which never change): whether each path existed (stat, or lstat without follow).
   * The fast path replays the one and checks the other (fastpath/record-run.ts). */
  made: string[];
  depends: { path: string; follow: boolean; exists: boolean }[];
}

/** The sandbox's own mount points; made here too, so that a root lacking them is not written to. */
const SANDBOX_DIRS = ["/proc", "/dev", "/tmp"];
const DNS_FILES = ["/etc/resolv.conf", "/etc/hosts"];
/** Host settings a Castle inside may use: configuration, never credentials or host paths. */
const PASSED_ENV = /^(CASTLE_[A-Z0-9_]+|AWS_ENDPOINT_URL(_S3)?|AWS_REGION|AWS_DEFAULT_REGION)$/;
// Host paths (the config file, a signing key) mean nothing inside; their settings pass as values.
const NOT_PASSED = /^CASTLE_(CACHE_DIR|STATE_DIR|DATA_DIR|OVERRIDE_.*|SANDBOX_HELPER|TREEUTIL|API_PATH|ZSTD|RUNTIME_DIR|STORE_LOWERS|DEFINITION|INSIDE|EXPORT_CACHE|DEBUG|CONFIG|SIGNING_KEY)$/;

/** Where Castle mounts things of its own, for checking --mount against (see mount-flags.ts). */
export function reservedPaths(castle: boolean, home: string): ReservedPath[] {
  if (!castle) return [];
  return [
    { path: CASTLE_MOUNT, what: "where Castle itself is mounted" },
    { path: `${home}/castle-src`, what: "the system's definition" },
    { path: `${home}/src`, what: "the system's edited sources" },
  ];
}

export function systemMounts(request: SystemMountsRequest, env: NodeJS.ProcessEnv = process.env): SystemMounts {
  const entries: MountPointEntry[] = SANDBOX_DIRS.map((path) => ({ kind: "dir", path }));
  const mounts: MountSpec[] = [];
  const notes: string[] = [];
  const outEnv: Record<string, string> = {};
  const made: string[] = [];
  const depends: SystemMounts["depends"] = [];
  const exists = (path: string) => {
    const found = existsSync(path);
    depends.push({ path, follow: true, exists: found });
    return found;
  };
  let inside: SystemMounts["inside"];
  const runtime = request.castle ? locateRuntime(env) : undefined;
  if (request.castle && !runtime) {
    notes.push("Castle's runtime is missing (install patchelf, then `npm run build`): `castle` is not available inside this system");
  }
  if (runtime) {
    exists(join(runtime, RUNTIME_MARKER));
    const own = insideInfo(env);
    const hostPaths: Record<string, string> = {};
    const bind = (source: string, target: string, readonly: boolean) => {
      mounts.push({ type: "bind", source, target, readonly });
      hostPaths[target] = hostPath(source, own);
    };
    entries.push({ kind: "dir", path: CASTLE_MOUNT }, { kind: "symlink", path: CASTLE_LINK, target: CASTLE_COMMAND });
    mounts.push({ type: "bind", source: runtime, target: CASTLE_MOUNT, readonly: true });
    mkdirSync(request.nestedCastle, { recursive: true });
    made.push(request.nestedCastle);
    bind(request.nestedCastle, NESTED_STATE, false);
    const stores = request.stores.slice(0, LOWER_STORE_MOUNTS);
    stores.forEach((store, i) => bind(store, lowerStoreMount(i), true));
    const editDir = `${request.home}/src`;
    const srcDir = join(request.systemDir, "src");
    mkdirSync(srcDir, { recursive: true });
    made.push(srcDir);
    entries.push({ kind: "dir", path: editDir });
    bind(srcDir, editDir, false);
    let definition: string | undefined;
    if (request.definition) {
      const at = `${request.home}/castle-src`;
      entries.push({ kind: "dir", path: at });
      bind(request.definition.host, at, false);
      definition = request.definition.subdir ? `${at}/${request.definition.subdir}` : at;
    }
    const info: InsideInfo = { instance: request.instance, run: request.run, edits: `${NESTED_STATE}/edits.json`, editDir, hostPaths };
    inside = { edits: join(request.nestedCastle, "edits.json"), hostPaths };
    for (const [name, value] of Object.entries(env)) {
      if (value !== undefined && PASSED_ENV.test(name) && !NOT_PASSED.test(name)) outEnv[name] = value;
    }
    if (request.importCaches.length > 0) outEnv.CASTLE_IMPORT_CACHE = request.importCaches.join(" ");
    // What pulls are trusted is a setting the nested Castle must share, wherever it came from here.
    if (request.trustedKeys.length > 0) outEnv.CASTLE_TRUSTED_KEYS = request.trustedKeys.join(" ");
    Object.assign(outEnv, {
      CASTLE_CACHE_DIR: `${NESTED_STATE}/${NESTED_DIRS.cache}`,
      CASTLE_STATE_DIR: `${NESTED_STATE}/${NESTED_DIRS.state}`,
      CASTLE_DATA_DIR: `${NESTED_STATE}/${NESTED_DIRS.data}`,
      CASTLE_STORE_LOWERS: stores.map((_, i) => lowerStoreMount(i)).join(":"),
      ...(definition ? { CASTLE_DEFINITION: definition } : {}),
      CASTLE_INSIDE: JSON.stringify(info),
    });
  }
  const userTargets = new Set(request.userMounts.map((m) => m.guest));
  if (request.network === "host") {
    for (const file of DNS_FILES) {
      if (userTargets.has(file) || !exists(file) || ships(file, request.lowers, request.upper, depends)) continue;
      entries.push({ kind: "file", path: file });
      mounts.push({ type: "bind", source: file, target: file, readonly: true });
    }
  }
  for (const m of request.userMounts) {
    entries.push({ kind: m.isDir ? "dir" : "file", path: m.guest });
    mounts.push({ type: "bind", source: m.host, target: m.guest, readonly: m.readonly });
  }
  return { bottom: mountPointLayer(request.dataDir, entries), mounts, env: outEnv, ...(inside ? { inside } : {}), notes, made, depends };
}

/** True when the system has this path itself (in its upper dir or any layer): a link counts.
 * Unless a layer has it, the answer is the upper dir's, which `depends` is told. */
function ships(path: string, lowers: string[], upper: string, depends: SystemMounts["depends"]): boolean {
  const has = (dir: string) => {
    try {
      lstatSync(join(dir, path));
      return true;
    } catch {
      return false;
    }
  };
  if (lowers.some(has)) return true;
  const inUpper = has(upper);
  depends.push({ path: join(upper, path), follow: false, exists: inUpper });
  return inUpper;
}
