// Owns running a built system: its composed layers beneath the persistent (or ephemeral) upper
// dir, what Castle mounts into it (inside/system-mounts.ts: Castle itself, the definition, the
// edited sources, DNS files, --mount binds), the user's terminal relayed when there is one, its
// limits (enforced by the sandbox), the
// instance registered while it runs, signals passed on, and the command's exit status returned.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { isatty } from "node:tty";
import { CastleError, isCastleError } from "@castle/errors";
import type { LocalStore } from "@castle/cache/store";
import type { BuildOutcome, System } from "@castle/graph";
import { spawn, type ResourceLimits, type SandboxSpec } from "@castle/sandbox";
import type { UserMount } from "../inside/mount-flags";
import { prepareInside } from "../inside/prepare-inside";
import type { SystemMounts } from "../inside/system-mounts";
import { CASTLE_MOUNT } from "../inside/runtime";
import { forwardSignals } from "./forward-signals";
import { InstanceRegistry, type Instance, type SystemClaim } from "./instances";
import type { DefinitionLocation } from "./locate-definition";
import { castlePaths, ensureDir } from "./paths";
import { unenforcedWarning } from "./resources";
import { systemUpper, type UpperDir } from "./system-state";

/** What a run decided, for the fast path to replay (see fastpath/record-run.ts). */
export interface RunFacts {
  /** The instance id (it is in the spec: CASTLE_INSIDE names the instance). */
  id: string;
  spec: SandboxSpec;
  /** What Castle mounted in, what that made and depended on; `edits`: it placed edited sources. */
  inside: Pick<SystemMounts, "bottom" | "notes" | "made" | "depends"> & { edits: boolean };
  /** The instance record's fields besides id, pid, initPid, pidStart and startedAt. */
  instance: Omit<Instance, "id" | "pid" | "initPid" | "pidStart" | "startedAt">;
  instancesDir: string;
  /** The system's slot this run holds (one persistent instance per system). */
  slot?: string;
  state: UpperDir;
  /** The one path whose existence the spec's cwd depended on (the layers beneath never change). */
  cwdCheck?: { path: string; exists: boolean };
}

export interface RunRequest {
  system: System;
  outcome: BuildOutcome;
  command?: string[];
  fresh: boolean;
  ephemeral: boolean;
  /** A throwaway state on top of the persistent one (see system-state.ts); it claims the system too. */
  snapshot?: boolean;
  network: "host" | "none";
  limits: ResourceLimits;
  definition: string;
  /** Mount Castle, the definition and the edited sources into the system (false: --no-castle). */
  castle: boolean;
  /** --mount binds, checked (inside/mount-flags.ts). */
  mounts: UserMount[];
  /** --env variables. */
  env: Record<string, string>;
  store: LocalStore;
  location: DefinitionLocation;
  /** The arguments that named the definition. */
  run: string[];
  importCaches: string[];
  /** Trusted public keys in effect (passed to a Castle inside). */
  trustedKeys: string[];
  /** A declared source's pinned files as a tree in the store. */
  sourceTree: (name: string) => Promise<string>;
  /** Called once the command runs and its instance is registered. */
  onStarted?: (facts: RunFacts) => void;
}

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export async function runSystem(request: RunRequest): Promise<number> {
  const { system } = request;
  const paths = castlePaths();
  const registry = new InstanceRegistry(paths.state);
  const id = request.snapshot ? `${registry.newId(system.name)}.s` : request.ephemeral ? `${registry.newId(system.name)}.e` : registry.newId(system.name);
  // One persistent instance per system, claimed in one atomic step before its upper dir is
  // touched (two instances on one upper dir is undefined behaviour in overlayfs). A snapshot
  // claims it too: it reads the persistent upper as a lower layer, which must not change meanwhile.
  const claim = request.ephemeral ? undefined : await registry.claimSystem(system.name, id);
  try {
    ensureDir(paths.data, "data");
    return await runClaimed(request, registry, id, claim);
  } finally {
    claim?.release();
  }
}

async function runClaimed(request: RunRequest, registry: InstanceRegistry, id: string, claim?: SystemClaim): Promise<number> {
  const { system } = request;
  const paths = castlePaths();
  const state = systemUpper(paths.data, system.name, request);
  const argv = request.command ?? [...system.entrypoint];
  // isatty() rather than process.stdin/stdout: making those streams costs a cached run ~1 ms.
  const tty = isatty(0) && isatty(1);
  const warn = (note: string) => process.stderr.write(`castle: warning: ${note}\n`);
  let inside;
  try {
    inside = await prepareInside({
      system, castle: request.castle, network: request.network, mounts: request.mounts, lowers: request.outcome.lowers,
      state, home: system.env.HOME ?? "/root", dataDir: paths.data, store: request.store, location: request.location,
      instance: id, run: request.run, importCaches: request.importCaches, trustedKeys: request.trustedKeys, sourceTree: request.sourceTree, warn,
    });
  } catch (error) {
    state.release();
    throw error;
  }
  for (const note of inside.notes) warn(note);
  // Decided before the command runs (it may create or remove the directory).
  const cwdIn = existsInRoot(system.cwd, [inside.bottom, ...request.outcome.lowers, ...state.above], state.upper);
  const spec: SandboxSpec = {
    // Castle's bottom layer holds every mount point, so none is written into the system's files.
    root: { lowers: [inside.bottom, ...request.outcome.lowers, ...state.above], upper: state.upper, work: state.work },
    mounts: inside.mounts,
    argv,
    env: {
      PATH: inside.env.CASTLE_INSIDE ? `${DEFAULT_PATH}:${CASTLE_MOUNT}/bin` : DEFAULT_PATH,
      HOME: "/root",
      TERM: process.env.TERM || "xterm",
      ...(process.env.LANG ? { LANG: process.env.LANG } : {}),
      ...inside.env,
      ...system.env,
      ...request.env,
    },
    cwd: cwdIn.exists ? system.cwd : "/",
    hostname: system.hostname,
    network: request.network,
    tty,
    ...(Object.keys(request.limits).length > 0 ? { limits: request.limits } : {}),
  };
  const child = spawn(spec, { stdio: "inherit" });
  const warning = unenforcedWarning(child.limits);
  if (warning) process.stderr.write(warning);
  const stopForwarding = forwardSignals(child);
  const instance: RunFacts["instance"] = {
    system: system.name, command: argv, definition: request.definition,
    env: spec.env!, cwd: spec.cwd!, ...(child.limits?.rlimits ? { rlimits: child.limits.rlimits } : {}),
    ...(child.limits?.cgroups.length ? { cgroups: child.limits.cgroups } : {}),
    ...(inside.inside ? { inside: inside.inside } : {}),
  };
  try {
    const started = await child.started;
    claim?.started(child.pid);
    registry.add({ id, pid: child.pid, initPid: started.initPid, startedAt: new Date().toISOString(), ...instance });
    request.onStarted?.({
      id, spec, instance, instancesDir: registry.directory, state,
      inside: { ...inside, edits: request.castle && system.castle && system.edit.length > 0 },
      ...(claim ? { slot: registry.slotFile(system.name) } : {}), ...(cwdIn.check ? { cwdCheck: cwdIn.check } : {}),
    });
    const exit = await child.wait();
    return exit.code;
  } catch (error) {
    throw commandError(error, argv, `system ${system.name}`);
  } finally {
    registry.remove(id);
    registry.list(); // also forgets entries of castles killed earlier (kill -9), so none pile up
    stopForwarding();
    state.release();
  }
}

/**
 * The sandbox's "not found" (127) and "not executable" (126) in the user's words, naming the
 * system rather than the sandbox spec; the helper has already printed its own line on stderr.
 */
export function commandError(error: unknown, argv: string[], where: string): unknown {
  if (!isCastleError(error)) return error;
  const options = { cause: error, data: { argv } };
  if (error.code === "CASTLE_SANDBOX_NOT_FOUND") {
    return new CastleError(error.code, `${argv[0]}: command not found in ${where}`, {
      ...options,
      hint: "a command without a slash is looked up in the PATH of the system's env; give its full path, or check the layers install it",
    });
  }
  if (error.code === "CASTLE_SANDBOX_NOT_EXECUTABLE") {
    return new CastleError(error.code, `${argv[0]}: cannot execute it in ${where}`, {
      ...options,
      hint: "it must be a file with the x bit, for this machine's architecture (a script needs its #! interpreter inside)",
    });
  }
  return error;
}

/** Whether path exists in the composed root; `check` is what the answer can change with: the
 * upper's copy, when no layer beneath (which never change) decides it. */
function existsInRoot(path: string, lowers: string[], upper: string): { exists: boolean; check?: RunFacts["cwdCheck"] } {
  if (lowers.some((dir) => existsSync(join(dir, path)))) return { exists: true };
  const exists = existsSync(join(upper, path));
  return { exists, check: { path: join(upper, path), exists } };
}
