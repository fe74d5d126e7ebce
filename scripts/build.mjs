#!/usr/bin/env node
// Owns the install-time build (run by `npm ci` through the root postinstall, or `npm run build`):
// compiles the C programs with the system cc (no node-gyp), bundles the CLI with esbuild, and
// assembles the runtime that `castle run` mounts into every system (scripts/build-runtime.mjs),
// then links the `castle` bin that npm could not (see linkBin).
// Each step says what it does; a missing compiler is a clear error naming the apt package.

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, symlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** C programs: each folder has a Makefile whose default target builds it. */
const nativeDirs = ["packages/sandbox/helper", "packages/cache/native", "packages/cli/launcher"];

/** The node running this build: the castle launcher falls back to it when none is on PATH. */
const nodeFallback = /^[\w/.+-]+$/.test(process.execPath) ? [`CASTLE_NODE=${process.execPath}`] : [];

function compileNative() {
  for (const dir of nativeDirs) {
    const abs = join(root, dir);
    if (!existsSync(join(abs, "Makefile"))) continue;
    try {
      execFileSync("make", ["-s", "-C", abs, ...nodeFallback], { stdio: "inherit" });
    } catch (error) {
      const missing = error && error.code === "ENOENT";
      console.error(
        `castle build: compiling ${dir} failed` +
          (missing ? ": `make` is not installed (apt install build-essential)" : ""),
      );
      process.exit(1);
    }
  }
}

async function bundleCli() {
  const bundle = join(root, "scripts/bundle-cli.mjs");
  if (!existsSync(bundle)) return;
  const { bundleCli: run } = await import(bundle);
  await run(root);
}

async function assembleRuntime() {
  const script = join(root, "scripts/build-runtime.mjs");
  if (!existsSync(script)) return;
  const { buildRuntime } = await import(script);
  await buildRuntime(root);
}

/**
 * npm links a workspace's bins before this build has written them, and skips a bin whose file is
 * missing: after `npm ci`, `npx castle` would find no `castle`. Link it now, as npm would have
 * (node_modules/.bin/castle -> ../castle/dist/castle), unless a working link is there.
 */
function linkBin() {
  const bin = join(root, "node_modules/.bin");
  const link = join(bin, "castle");
  if (!existsSync(join(root, "node_modules/castle/dist/castle")) || existsSync(link)) return;
  mkdirSync(bin, { recursive: true });
  rmSync(link, { force: true }); // a dangling link
  symlinkSync("../castle/dist/castle", link);
}

compileNative();
await bundleCli();
await assembleRuntime();
linkBin();
