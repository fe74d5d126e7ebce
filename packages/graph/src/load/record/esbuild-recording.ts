// Owns compiling a definition so that its evaluation can be recorded: every Node built-in it (or
// a package it bundles) imports is resolved to a small module that asks the recorder of the
// running load for its view (builtin-views.ts); the bundle's own `require` — which only dynamic
// requires still reach — goes through the recorder's guard (see the banners); and a dynamic
// import() left in the output (which would load code nobody records) is a reason the
// definition is impure, found once, when it is compiled.

import { isBuiltin } from "node:module";
import type { Plugin } from "esbuild";

const NAMESPACE = "castle-builtin";
const RECORDER_EXPR = 'globalThis[Symbol.for("castle.definition.recorder")]';

/** Resolves built-in modules to the recorder's views, except in Castle's own API module
 * (bundled: it is Castle's code, and what it reads is Castle's to know). */
export function recordingPlugin(apiPath: string): Plugin {
  return {
    name: "castle-recording",
    setup(build) {
      build.onResolve({ filter: /^(node:)?[a-z_]+(\/[a-z_]+)?$/ }, (args) => {
        if (!isBuiltin(args.path)) return undefined;
        const name = args.path.replace(/^node:/, "");
        return { path: args.importer === apiPath ? `real/${name}` : name, namespace: NAMESPACE };
      });
      build.onLoad({ filter: /.*/, namespace: NAMESPACE }, (args) => ({
        contents: args.path.startsWith("real/")
          ? `module.exports = ${RECORDER_EXPR}.realBuiltin(${JSON.stringify(args.path.slice(5))});`
          : `module.exports = ${RECORDER_EXPR}.builtin(${JSON.stringify(args.path)});`,
        loader: "js",
      }));
    },
  };
}

/** Inputs esbuild lists that are the views above, not files. */
export function isRecordingInput(input: string): boolean {
  return input.startsWith(`${NAMESPACE}:`);
}

/** The first lines of a CommonJS bundle: its require goes through the recorder's guard. */
export const CJS_BANNER =
  'var __castleImportMetaUrl = require("node:url").pathToFileURL(__filename).href;\n' +
  `var require = ${RECORDER_EXPR}.guardRequire(require);`;

/** The first lines of an ES module bundle: the require esbuild's helpers use, guarded. */
export const ESM_BANNER =
  'import { createRequire as __castleRequire } from "node:module";\n' +
  `const require = ${RECORDER_EXPR}.guardRequire(__castleRequire(import.meta.url));`;

/** Why the compiled code is impure whatever it reads (empty: nothing found). */
export function compiledImpurity(output: string): string[] {
  return /(?<![\w$.])import\s*\(/.test(output) ? ["loads code at run time (a dynamic import())"] : [];
}
