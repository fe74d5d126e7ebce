// Owns building one scripted layer: staging an upper dir, assembling the sandbox spec (build
// root of composed dependency trees, copy-on-write mounts, persistent caches, limits), running
// the script with its log captured, and committing the upper dir as the layer's output.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { messageOf } from "@castle/errors";
import type { KeyRecord, LayerKey, Staging, Store } from "@castle/cache";
import type { MountSpec, SandboxSpec } from "@castle/sandbox";
import { DEFAULT_BUILD_ENV } from "../hash/layer-key";
import type { BuildOptions } from "../types";
import { describeBuildLimits, limitHitMessage, resolveBuildLimits, type BuildLimitOverrides } from "./build-limits";
import { BuildFailedError } from "./errors";
import { LogSink } from "./log-sink";
import type { SandboxRunner } from "./sandbox-runner";

export interface BuildPlan {
  /** The layer's name, for logs and the sandbox's CASTLE_LAYER. */
  name: string;
  key: LayerKey;
  build: BuildOptions;
  /** Trees beneath the build root, bottom first. */
  rootTrees: string[];
  /** Per mount path: the trees composed there, bottom first. */
  mountTrees: { path: string; trees: string[] }[];
  /** Concurrent jobs this build may use (MAKEFLAGS, CASTLE_JOBS). */
  jobs: number;
}

export interface BuildContext {
  store: Store;
  sandbox: SandboxRunner;
  onLine: (line: string) => void;
  signal?: AbortSignal;
  /** The run's overrides of every build's limits (over the layer's own and Castle's defaults). */
  limits?: BuildLimitOverrides;
}

/** Paths that must exist in the root for the sandbox to mount over them. */
const SYSTEM_MOUNTS = ["/proc", "/dev", "/tmp", "/sys"];

export async function runBuild(plan: BuildPlan, ctx: BuildContext): Promise<KeyRecord> {
  const { name, key } = plan;
  const staging = await ctx.store.stage(name);
  const logPath = ctx.store.logPath(key);
  const log = new LogSink(logPath, ctx.onLine);
  const started = Date.now();
  try {
    const spec = buildSpec(plan, staging, ctx.store, ctx.limits);
    log.note(`building ${name} (key ${key.slice(0, 12)}) with ${plan.jobs} job(s)`);
    const child = ctx.sandbox.spawn(spec, { stdio: ["ignore", "pipe", "pipe"], signal: ctx.signal });
    log.note(describeBuildLimits(spec.limits!, child.limits));
    child.stdout?.on("data", (d: Buffer) => log.write(d));
    child.stderr?.on("data", (d: Buffer) => log.write(d));
    let exit;
    try {
      exit = await child.wait();
    } catch (error) {
      log.note(messageOf(error));
      throw new BuildFailedError(name, messageOf(error), { logPath, logTail: log.lastLines() }, error);
    }
    if (exit.code !== 0) {
      const how = exit.signal ? `killed by ${exit.signal}` : `exited with status ${exit.code}`;
      const limit = limitHitMessage(exit.limitHit);
      const message = `the build script ${how}${limit ? `: ${limit}` : ""}`;
      log.note(message);
      throw new BuildFailedError(name, message, {
        logPath, logTail: log.lastLines(), exitCode: exit.code, ...(exit.limitHit ? { limit: exit.limitHit } : {}),
      });
    }
    const record = await ctx.store.commit(staging, key, { name, buildMs: Date.now() - started, origin: "built" });
    log.note(`done in ${((Date.now() - started) / 1000).toFixed(1)} s: output ${record.digest.slice(0, 12)}, ${record.entries} entries, ${record.bytes} bytes`);
    return record;
  } finally {
    await log.close();
    await staging.discard();
  }
}

function buildSpec(plan: BuildPlan, staging: Staging, store: Store, overrides: BuildLimitOverrides | undefined): SandboxSpec {
  const { build } = plan;
  // An extra bottom lower holds empty directories for every mount point, so that creating them
  // never writes into the upper dir (which is the layer's output).
  const mountpoints = join(staging.dir, "mountpoints");
  const targets = [...SYSTEM_MOUNTS, ...plan.mountTrees.map((m) => m.path), ...Object.keys(build.caches)];
  if (build.cwd !== "/") targets.push(build.cwd);
  for (const target of targets) mkdirSync(join(mountpoints, target), { recursive: true });

  const mounts: MountSpec[] = plan.mountTrees.map((mount, i) => {
    const scratch = join(staging.dir, `mount${i}`);
    mkdirSync(join(scratch, "upper"), { recursive: true });
    mkdirSync(join(scratch, "work"));
    return { type: "overlay", target: mount.path, lowers: mount.trees, upper: join(scratch, "upper"), work: join(scratch, "work") };
  });
  for (const [path, id] of Object.entries(build.caches)) {
    mounts.push({ type: "bind", source: store.buildCache(id), target: path, readonly: false });
  }
  return {
    // Volatile: overlayfs skips its syncfs at unmount; the store syncs once, at commit.
    root: { lowers: [mountpoints, ...plan.rootTrees], upper: staging.tree, work: staging.work, volatile: true },
    mounts,
    argv: [...build.shell, build.script],
    // Job counts are not part of the key: a build must not depend on how many cores it had.
    env: {
      ...DEFAULT_BUILD_ENV,
      CASTLE_LAYER: plan.name,
      CASTLE_JOBS: String(plan.jobs),
      MAKEFLAGS: `-j${plan.jobs}`,
      ...build.env,
    },
    cwd: build.cwd,
    hostname: "castle-build",
    network: build.network,
    limits: resolveBuildLimits(build.limits, overrides),
  };
}
