// Tests the progress UI's entry (cli/src/ui/reporter.ts): choosing the mode, the plain path of
// createReporter, and that the module the CLI imports eagerly does not load ink or react (they
// must only arrive through the TTY path's dynamic import, in a chunk of their own).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Writable } from "node:stream";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";
import { chooseMode, createReporter } from "../src/ui/reporter";
import { scriptedBuild } from "./helpers/ui-scripted-build";

describe("chooseMode", () => {
  it("draws on a terminal unless told otherwise", () => {
    expect(chooseMode({ isTTY: true, env: { TERM: "xterm-256color" } })).toBe("tty");
    expect(chooseMode({ isTTY: true, env: { CI: "false" } })).toBe("tty");
    expect(chooseMode({ isTTY: true, env: { CI: "0" } })).toBe("tty");
  });

  it("prints plain lines for --plain, a non-terminal, CI or TERM=dumb", () => {
    expect(chooseMode({ plain: true, isTTY: true, env: {} })).toBe("plain");
    expect(chooseMode({ isTTY: false, env: {} })).toBe("plain");
    expect(chooseMode({ isTTY: undefined, env: {} })).toBe("plain");
    expect(chooseMode({ isTTY: true, env: { CI: "true" } })).toBe("plain");
    expect(chooseMode({ isTTY: true, env: { CI: "1" } })).toBe("plain");
    expect(chooseMode({ isTTY: true, env: { CI: "" } })).toBe("plain");
    expect(chooseMode({ isTTY: true, env: { CONTINUOUS_INTEGRATION: "yes" } })).toBe("plain");
    expect(chooseMode({ isTTY: true, env: { TERM: "dumb" } })).toBe("plain");
  });
});

describe("createReporter", () => {
  it("in plain mode writes lines to the given stream", async () => {
    let output = "";
    const stream = new Writable({
      write(chunk, _encoding, callback) {
        output += String(chunk);
        callback();
      },
    });
    const progress = await createReporter({ mode: "plain", stream });
    for (const step of scriptedBuild()) progress.onEvent(step.event);
    await progress.close();
    await progress.close();
    expect(output).toContain("[5/8] built lua in 21.4s\n");
    expect(output).toMatch(/^done: 8 layers .*\n$/m);
    expect(output).not.toContain("\x1b");
  });

  it("is importable without loading ink or react: they come only with the TTY path's import()", async () => {
    const outdir = mkdtempSync(join(tmpdir(), "castle-ui-bundle-"));
    try {
      // Bundled as scripts/bundle-cli.mjs bundles the CLI: code splitting, dynamic imports in chunks.
      const result = await build({
        entryPoints: { progress: resolve(import.meta.dirname, "../src/ui/index.ts") },
        bundle: true,
        splitting: true,
        format: "esm",
        platform: "node",
        outdir,
        metafile: true,
        write: false,
        logLevel: "silent",
        alias: { "react-devtools-core": resolve(import.meta.dirname, "../../../scripts/empty-module.mjs") },
      });
      const outputs = result.metafile.outputs;
      const entry = Object.keys(outputs).find((path) => outputs[path]?.entryPoint !== undefined);
      expect(entry).toBeDefined();
      // Everything loaded eagerly: the entry and what it imports statically, transitively.
      const eager = new Set<string>();
      const visit = (path: string): void => {
        if (eager.has(path)) return;
        eager.add(path);
        for (const dependency of outputs[path]?.imports ?? []) if (dependency.kind === "import-statement") visit(dependency.path);
      };
      visit(entry!);
      const eagerInputs = [...eager].flatMap((path) => Object.keys(outputs[path]?.inputs ?? {}));
      expect(eagerInputs.filter((input) => /node_modules\/(ink|react|react-reconciler)\//.test(input))).toEqual([]);
      expect(eagerInputs.some((input) => input.endsWith("ui/plain-reporter.ts"))).toBe(true);
      const all = Object.values(outputs).flatMap((output) => Object.keys(output.inputs));
      expect(all.some((input) => input.includes("node_modules/ink/"))).toBe(true);
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });
});
