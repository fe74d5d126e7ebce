// Owns bundling the castle CLI with esbuild into packages/cli/dist: castle.mjs (the command, with
// code splitting so the ink UI and the AWS SDK load only when used), api.mjs (the definition API
// that castle.ts files import as "castle"), and copies of the C programs beside them.

import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

export async function bundleCli(root) {
  const cli = join(root, "packages/cli");
  const entry = join(cli, "src/main.ts");
  if (!existsSync(entry)) return;
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
    format: "esm",
    sourcemap: "linked",
    logLevel: "warning",
    // esbuild ships a native binary beside its JS API: it is loaded from node_modules, not bundled.
    external: ["esbuild"],
    // ink optionally imports react-devtools-core for debugging; it is never used at run time.
    alias: { "react-devtools-core": join(root, "scripts/empty-module.mjs") },
    banner: {
      js: 'import { createRequire as __castleCreateRequire } from "node:module"; const require = __castleCreateRequire(import.meta.url);',
    },
  };
  await esbuild.build({
    ...common,
    entryPoints: { castle: entry },
    outdir: dist,
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
    outExtension: { ".js": ".mjs" },
    banner: { js: `#!/usr/bin/env node\n${common.banner.js}` },
  });
  await esbuild.build({ ...common, entryPoints: [join(cli, "src/api.ts")], outfile: join(dist, "api.mjs") });
  chmodSync(join(dist, "castle.mjs"), 0o755);
  for (const binary of ["packages/sandbox/helper/castle-sandbox", "packages/cache/native/castle-treeutil"]) {
    const from = join(root, binary);
    if (!existsSync(from)) continue;
    const to = join(dist, binary.split("/").pop());
    copyFileSync(from, to);
    chmodSync(to, 0o755);
  }
}
