// Owns bundling the castle CLI with esbuild into packages/cli/dist:
// - castle.cjs, the launcher (the `castle` bin): runs core.cjs from a V8 code cache
//   (packages/cli/src/launcher.ts);
// - core.cjs, the whole command except what is slow to load, as one CommonJS file (the only
//   kind Node 20 can run from a code cache); its import() calls go through the launcher;
// - lazy/*.mjs, what the core loads only when needed: the ink UI and the AWS SDK, which are slow
//   to load, and isomorphic-git (ES modules, code-split so they share their common parts);
// - api.mjs, the definition API that castle.ts files import as "castle";
// - unpack-thread.cjs, the unpacker's worker thread;
// - copies of the C programs beside them, and `castle`, the native launcher the bin points at
//   (packages/cli/launcher: a cached `castle run` starts the sandbox without Node; everything
//   else it hands to castle.cjs).

import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import { join, relative } from "node:path";

/** What the core loads from lazy/, by the specifier its source imports. */
const LAZY = {
  "./ink-reporter": { name: "ui-ink", entry: "packages/cli/src/ui/ink-reporter.tsx" },
  "@aws-sdk/client-s3": { name: "aws-s3", entry: "@aws-sdk/client-s3" },
  "@aws-sdk/lib-storage": { name: "aws-storage", entry: "@aws-sdk/lib-storage" },
  "isomorphic-git": { name: "git", entry: "isomorphic-git" },
  "isomorphic-git/http/node": { name: "git-http", entry: "isomorphic-git/http/node" },
};

export async function bundleCli(root) {
  const cli = join(root, "packages/cli");
  if (!existsSync(join(cli, "src/main.ts"))) return;
  const esbuild = await import("esbuild");
  const dist = join(cli, "dist");
  rmSync(dist, { recursive: true, force: true });
  mkdirSync(dist, { recursive: true });
  const { version } = JSON.parse(readFileSync(join(cli, "package.json"), "utf8"));
  const common = {
    define: { CASTLE_VERSION: JSON.stringify(version) },
    bundle: true,
    platform: "node",
    target: "node20",
    sourcemap: "linked",
    logLevel: "warning",
    // esbuild ships a native binary beside its JS API: it is loaded from node_modules, not bundled.
    external: ["esbuild"],
    // ink optionally imports react-devtools-core for debugging; it is never used at run time.
    alias: { "react-devtools-core": join(root, "scripts/empty-module.mjs") },
  };
  const esm = {
    ...common,
    format: "esm",
    banner: { js: 'import { createRequire as __castleCreateRequire } from "node:module"; const require = __castleCreateRequire(import.meta.url);' },
  };

  await esbuild.build({
    ...esm,
    entryPoints: Object.fromEntries(Object.values(LAZY).map(({ name, entry }) => [name, entry.startsWith("packages/") ? join(root, entry) : entry])),
    outdir: join(dist, "lazy"),
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
    outExtension: { ".js": ".mjs" },
  });

  const core = join(dist, "core.cjs");
  const built = await esbuild.build({
    ...common,
    define: { ...common.define, "import.meta.url": "__castleModuleUrl" },
    format: "cjs",
    entryPoints: [join(cli, "src/main.ts")],
    outfile: core,
    metafile: true,
    write: false,
    banner: { js: 'var __castleModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
    plugins: [lazyModules()],
  });
  for (const file of built.outputFiles) {
    writeFileSync(file.path, file.path === core ? routeDynamicImports(file.text) : file.contents);
  }
  refuseRuntimePackages(built.metafile, root);

  // CommonJS too: a cached `castle run` then never starts Node's ES module loader.
  await esbuild.build({
    ...common,
    format: "cjs",
    define: {
      ...common.define,
      CASTLE_CORE_ID: JSON.stringify(createHash("sha256").update(readFileSync(core)).digest("hex")),
      "import.meta.url": "__castleModuleUrl",
    },
    entryPoints: [join(cli, "src/launcher.ts")],
    outfile: join(dist, "castle.cjs"),
    banner: { js: '#!/usr/bin/env node\nvar __castleModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
  });
  await esbuild.build({ ...esm, entryPoints: [join(cli, "src/api.ts")], outfile: join(dist, "api.mjs") });
  // Worker threads start from files of their own, found beside the code that starts them.
  await esbuild.build({
    ...common,
    format: "cjs",
    // The worker's code reaches store/treeutil.ts (through the tree writer), which finds files by
    // import.meta.url: give it this file's URL, as the CLI bundle does.
    define: { ...common.define, "import.meta.url": "__castleModuleUrl" },
    banner: { js: 'var __castleModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
    entryPoints: [join(root, "packages/cache/src/archive/unpack-thread.ts")],
    outfile: join(dist, "unpack-thread.cjs"),
  });
  chmodSync(join(dist, "castle.cjs"), 0o755);
  for (const binary of ["packages/sandbox/helper/castle-sandbox", "packages/cache/native/castle-treeutil", "packages/cli/launcher/castle"]) {
    const from = join(root, binary);
    if (!existsSync(from)) continue;
    const to = join(dist, binary.split("/").pop());
    copyFileSync(from, to);
    chmodSync(to, 0o755);
  }
}

/** Resolves the core's imports of LAZY specifiers to the lazy bundles (relative to castle.cjs). */
function lazyModules() {
  return {
    name: "castle-lazy-modules",
    setup(build) {
      const specifiers = Object.keys(LAZY).map((s) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&"));
      build.onResolve({ filter: new RegExp(`^(${specifiers.join("|")})$`) }, (args) => ({
        path: `./lazy/${LAZY[args.path].name}.mjs`,
        external: true,
      }));
    },
  };
}

/**
 * Code run from a V8 code cache cannot use import() on Node 20 (its module callback is lost), so
 * every import( in the core becomes a call of the launcher's __castleImport. esbuild prints each
 * dynamic import as `import(`; nothing else in the core may contain that text.
 */
function routeDynamicImports(text) {
  const routed = text.replace(/(?<![\w$.])import\(/g, "__castleImport(");
  if (/(?<![\w$.])import\s*\(/.test(routed)) throw new Error("bundle-cli: an import( in core.cjs was not routed through the launcher");
  return routed;
}

/** The core must be self-contained: only Node's own modules, esbuild, and lazy/ at run time. */
function refuseRuntimePackages(metafile, root) {
  for (const [path, input] of Object.entries(metafile.inputs)) {
    for (const imported of input.imports) {
      const { path: target } = imported;
      if (!imported.external || isBuiltin(target) || target === "esbuild" || target.startsWith("./lazy/")) continue;
      throw new Error(`bundle-cli: ${relative(root, path)} imports ${target}, which core.cjs would need from node_modules at run time`);
    }
  }
}
