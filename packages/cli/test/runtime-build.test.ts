// Tests for the runtime scripts/build-runtime.mjs assembles (packages/cli/runtime, what `castle
// run` mounts at /.castle): its programs load only what it carries, from where it is mounted, and
// it holds the very bundle built beside it. (That it runs in a system without any libc is the
// e2e test's job: test/e2e/cli-inside.test.ts.)

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const CLI = resolve(import.meta.dirname, "..");
const RUNTIME = join(CLI, "runtime");
const skip = !existsSync(join(RUNTIME, "castle-runtime.json"))
  ? "the runtime was not built (apt install patchelf, then npm run build)"
  : undefined;
if (skip) console.warn(`skipping runtime-build: ${skip}`);

const patchelf = (...args: string[]) => execFileSync("patchelf", args, { encoding: "utf8" }).trim();

describe.skipIf(skip)("Castle's runtime", () => {
  const manifest = () => JSON.parse(readFileSync(join(RUNTIME, "castle-runtime.json"), "utf8")) as { mount: string; core: string; carried: Record<string, unknown> };

  it("carries node (and zstd) with their loader and libraries, found from /.castle/lib", () => {
    const lib = readdirSync(join(RUNTIME, "lib"));
    for (const program of Object.keys(manifest().carried)) {
      const file = join(RUNTIME, "libexec", program);
      const interpreter = patchelf("--print-interpreter", file);
      expect(interpreter).toMatch(/^\/\.castle\/lib\/ld-[\w.-]+\.so[.\d]*$/);
      expect(lib).toContain(interpreter.split("/").pop());
      expect(patchelf("--print-rpath", file)).toBe("/.castle/lib");
      for (const needed of patchelf("--print-needed", file).split("\n").filter(Boolean)) expect(lib).toContain(needed);
    }
    expect(Object.keys(manifest().carried)).toContain("node");
  });

  it("holds the bundle built beside it, a castle command for /.castle, and the mount points", () => {
    expect(manifest().mount).toBe("/.castle");
    const core = readFileSync(join(CLI, "dist/core.cjs"));
    expect(manifest().core).toBe(createHash("sha256").update(core).digest("hex"));
    expect(readFileSync(join(RUNTIME, "dist/core.cjs")).equals(core)).toBe(true);
    expect(readFileSync(join(RUNTIME, "bin/castle"), "utf8")).toMatch(/^#!\/\.castle\/libexec\/node\n[^]*require\("\/\.castle\/dist\/castle\.cjs"\)/);
    expect(existsSync(join(RUNTIME, "node_modules/esbuild/package.json"))).toBe(true);
    expect(readdirSync(join(RUNTIME, "state"))).toEqual([]);
    expect(readdirSync(join(RUNTIME, "stores")).sort()).toEqual(["0", "1", "2", "3", "4", "5", "6", "7"]);
  });
});
