// Tests that the definition API's types refuse a mistyped option in an editor, before anything
// runs: a castle.ts is type-checked with the TypeScript compiler as the README tells a user to
// set it up (a tsconfig.json whose `paths` map "castle" to the API), and every definition
// function's misspelled option is an error that suggests the right one; a correct file passes.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import ts from "typescript";
import { afterAll, describe, expect, it } from "vitest";

const API = resolve(import.meta.dirname, "../../cli/src/api.ts");
const dir = mkdtempSync(join(tmpdir(), "castle-types-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Diagnostics of castle.ts holding `body`, checked as a definition repository would be. */
function check(body: string): { code: number; line: number; text: string }[] {
  const file = join(dir, "castle.ts");
  writeFileSync(file, `import { layer, source, system } from "castle";\n${body}\n`);
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, target: "ES2022", module: "ESNext", moduleResolution: "Bundler", skipLibCheck: true, types: [], paths: { castle: [API] } },
  }));
  const config = ts.getParsedCommandLineOfConfigFile(join(dir, "tsconfig.json"), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
  const program = ts.createProgram([file], config!.options);
  return ts.getPreEmitDiagnostics(program).filter((d) => d.file?.fileName === file).map((d) => ({
    code: d.code,
    line: d.file!.getLineAndCharacterOfPosition(d.start ?? 0).line + 1,
    text: ts.flattenDiagnosticMessageText(d.messageText, "\n"),
  }));
}

describe("the definition API's types", () => {
  it("accept a correct definition", () => {
    expect(check(`const base = layer.import({ name: "base", from: source.local("./rootfs", { ignore: [".git"] }) });
const src = source.http({ url: "https://example.invalid/a.tar.gz", sha256: "${"0".repeat(64)}", strip: 1 });
const app = layer({ name: "app", runDeps: [base], mounts: { "/src": src }, script: "true" });
const all = layer.merge({ name: "all", layers: [app] });
export default system({ name: "s", layers: [all], entrypoint: ["/bin/sh"] });`)).toEqual([]);
  }, 120_000);

  it("refuse a misspelled option in every definition function, (suggesting the right one where TypeScript finds it)", () => {
    const diagnostics = check(`const base = layer.import({ name: "base", form: source.inline({}) });
const app = layer({ name: "app", runDep: [base], script: "true" });
const all = layer.merge({ name: "all", layer: [app] });
const src = source.http({ url: "https://example.invalid/a.tar.gz", sha256: "0", mirror: [] });
const git = source.git({ url: "https://example.invalid/a.git", comit: "0" });
const local = source.local(".", { ignores: [] });
const inline = source.inline({}, { nmae: "x" });
export default system({ name: "s", layers: [all], entryPoint: ["/bin/sh"] });`);
    // An excess property in an object literal: TypeScript's 2353, or 2561 when it has a suggestion.
    expect(diagnostics.map((d) => [d.line, d.code === 2353 || d.code === 2561, /'(\w+)' does not exist/.exec(d.text)?.[1]])).toEqual([
      [2, true, "form"], [3, true, "runDep"], [4, true, "layer"], [5, true, "mirror"], [6, true, "comit"], [7, true, "ignores"], [8, true, "nmae"], [9, true, "entryPoint"],
    ]);
    expect(diagnostics.find((d) => d.line === 3)?.text).toContain("Did you mean to write 'runDeps'?");
  }, 120_000);
});
