// Tests for recording what a definition reads while it is evaluated (load/record/): the
// environment, files through fs (sync, callback and promise forms), sibling modules and the
// files esbuild consulted, the working directory; and every kind of impurity — the clock,
// randomness, child processes, the network, printing, timers, writes, code loaded at run time.
// Each loads a real definition through loadDefinition.

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadDefinition } from "../src/load/load-definition";
import type { DefinitionReads } from "../src/load/record/definition-reads";

const TSX = join(import.meta.dirname, "../../../node_modules/.bin/tsx");
const temps: string[] = [];
afterEach(() => {
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const EXPORT = `import { layer, source, system } from "castle";
export default system({ name: "t", layers: [layer.import({ name: "base", from: source.inline({ "a": "a" }, { name: "b" }) })] });
`;

function project(castleTs: string, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "castle-reads-"));
  temps.push(dir);
  mkdirSync(join(dir, ".cache"));
  writeFileSync(join(dir, "castle.ts"), castleTs);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

async function reads(castleTs: string, files: Record<string, string> = {}): Promise<{ dir: string; reads: DefinitionReads }> {
  const dir = project(castleTs, files);
  const loaded = await loadDefinition({ path: dir, cacheDir: join(dir, ".cache") });
  return { dir, reads: loaded.reads };
}

function readPaths(r: DefinitionReads): string[] {
  return r.files.map((f) => f.path);
}

describe("what a definition reads", () => {
  it("records the environment variables it reads, set or not, and nothing else", async () => {
    process.env.CASTLE_TEST_READ = "one";
    delete process.env.CASTLE_TEST_UNSET;
    try {
      const { reads: r } = await reads(`const a = process.env.CASTLE_TEST_READ;\nconst b = "CASTLE_TEST_UNSET" in process.env;\n${EXPORT}`);
      expect(r.impure).toEqual([]);
      expect(r.env).toEqual(new Map([["CASTLE_TEST_READ", "one"], ["CASTLE_TEST_UNSET", undefined]]));
      expect(r.envListed).toBe(false);
      expect(r.cwd).toBeUndefined();
    } finally {
      delete process.env.CASTLE_TEST_READ;
    }
  });

  it("records listing the whole environment", async () => {
    const { reads: r } = await reads(`const all = Object.keys(process.env).length;\n${EXPORT}`);
    expect(r.envListed).toBe(true);
    expect(r.impure).toEqual([]);
  });

  it("records each file read through fs with its identity, taken before the read", async () => {
    const dir = project("", { "data.txt": "hello" });
    writeFileSync(
      join(dir, "castle.ts"),
      `import { readFileSync, existsSync, readdirSync } from "node:fs";\n` +
        `const a = readFileSync(${JSON.stringify(join(dir, "data.txt"))}, "utf8");\n` +
        `const b = existsSync("/nonexistent-castle-test");\n` +
        `const c = readdirSync(${JSON.stringify(dir)});\n${EXPORT}`,
    );
    const { reads: r } = await loadDefinition({ path: dir, cacheDir: join(dir, ".cache") });
    expect(r.impure).toEqual([]);
    expect(r.files.find((f) => f.path === join(dir, "data.txt"))!.identity).toMatchObject({ kind: "present", size: 5 });
    expect(r.files.find((f) => f.path === "/nonexistent-castle-test")!.identity).toEqual({ kind: "absent" });
    expect(readPaths(r)).toContain(dir);
    expect(r.cwd).toBeUndefined();
  });

  it("records a relative path as a use of the working directory", async () => {
    const dir = project(`import { readFileSync } from "node:fs";\nconst a = readFileSync("data.txt", "utf8");\n${EXPORT}`, { "data.txt": "x" });
    const saved = process.cwd();
    process.chdir(dir);
    try {
      const { reads: r } = await loadDefinition({ path: dir, cacheDir: join(dir, ".cache") });
      expect(r.cwd).toBe(dir);
      const read = r.files.find((f) => f.path === join(dir, "data.txt"))!;
      expect(read.follow).toBe(true);
      expect(read.identity).toMatchObject({ kind: "present", size: 1 });
    } finally {
      process.chdir(saved);
    }
  });

  it("records the promise and callback forms, and an unfinished read is impure", async () => {
    const file = join(tmpdir(), `castle-reads-${process.pid}.txt`);
    writeFileSync(file, "x");
    try {
      // An ES module definition is imported by Node itself: in a child, not through vitest's loader.
      const dir = project(`import { readFile } from "node:fs/promises";\nconst t = await readFile(${JSON.stringify(file)}, "utf8");\n${EXPORT}`);
      const script = `import { loadDefinition } from ${JSON.stringify(join(import.meta.dirname, "../src/load/load-definition.ts"))};
const { reads } = await loadDefinition({ path: ${JSON.stringify(dir)}, cacheDir: ${JSON.stringify(join(dir, ".cache"))} });
console.log(JSON.stringify({ impure: reads.impure, files: reads.files.map((f) => f.path) }));`;
      writeFileSync(join(dir, "load.mts"), script);
      const out = JSON.parse(execFileSync(TSX, [join(dir, "load.mts")], { encoding: "utf8" })) as { impure: string[]; files: string[] };
      expect(out.impure).toEqual([]);
      expect(out.files).toContain(file);
      const dangling = await reads(`import { readFile } from "node:fs";\nreadFile(${JSON.stringify(file)}, () => {});\n${EXPORT}`);
      expect(dangling.reads.impure).toEqual(["still reading files after it was evaluated"]);
    } finally {
      rmSync(file, { force: true });
    }
  });

  it("records the castle.ts path as named, its sibling modules and the files esbuild consulted", async () => {
    const dir = project(`import { name } from "./lib";\n${EXPORT.replace('"t"', "name")}`, { "lib.ts": 'export const name = "sibling";\n' });
    const link = `${dir}-link`;
    symlinkSync(dir, link);
    temps.push(link);
    const loaded = await loadDefinition({ path: link, cacheDir: join(dir, ".cache") });
    expect(loaded.system.name).toBe("sibling");
    const paths = readPaths(loaded.reads);
    expect(paths).toContain(join(link, "castle.ts"));
    // Paths as esbuild opened them, through the link: repointing it changes their identities.
    expect(paths).toContain(join(link, "lib.ts"));
    expect(paths).toContain(join(link, "package.json")); // absent, and consulted
    expect(loaded.reads.files.find((f) => f.path === join(link, "package.json"))!.identity).toEqual({ kind: "absent" });
    // The cached bundle gives the same answer.
    const again = await loadDefinition({ path: link, cacheDir: join(dir, ".cache") });
    expect(again.cached).toBe(true);
    expect(readPaths(again.reads)).toEqual(paths);
  });
});

describe("what makes a definition impure", () => {
  const cases: [string, string, RegExp][] = [
    ["the clock", "const t = Date.now();", /Date\.now/],
    ["the current date", "const t = new Date().getFullYear();", /new Date\(\)/],
    ["randomness", "const r = Math.random();", /Math\.random/],
    ["a child process", 'import { execFileSync } from "node:child_process";\nconst v = execFileSync("/bin/true");', /child_process\.execFileSync/],
    ["crypto's random bytes", 'import { randomBytes } from "node:crypto";\nconst b = randomBytes(2);', /crypto\.randomBytes/],
    ["the network", 'const p = fetch("http://127.0.0.1:9/").catch(() => undefined);', /fetch/],
    ["printing", 'console.log("building");', /console\.log/],
    ["a timer", "setTimeout(() => {}, 0);", /setTimeout/],
    ["a write", 'import { writeFileSync } from "node:fs";\nwriteFileSync("/dev/null", "x");', /fs\.writeFileSync/],
    ["the command line", "const a = process.argv.length;", /process\.argv/],
    ["a require at run time", 'const name = "node:os";\nconst os = require(name);', /require/],
    ["an import() at run time", 'const name = "node:os";\nexport const later = () => import(name);', /dynamic import/],
    ["setting the environment", 'process.env.CASTLE_TEST_SET = "x";', /sets the environment variable/],
    ["the host's name", 'import { hostname } from "node:os";\nconst h = hostname();', /os\.hostname/],
  ];
  for (const [what, code, reason] of cases) {
    it(`is impure when it uses ${what}`, async () => {
      const { reads: r } = await reads(`${code}\n${EXPORT}`);
      expect(r.impure.join("; ")).toMatch(reason);
    });
  }
  delete process.env.CASTLE_TEST_SET;

  it("stays pure with a fixed date, a hash, the platform and plain modules", async () => {
    const { reads: r } = await reads(
      'import { createHash } from "node:crypto";\nimport { platform } from "node:os";\nimport { join } from "node:path";\n' +
        'const d = new Date(2020, 1, 1).toISOString();\nconst h = createHash("sha256").update(d).digest("hex");\n' +
        `const p = join(platform(), h);\n${EXPORT}`,
    );
    expect(r.impure).toEqual([]);
  });

  it("puts every global back as it was once the definition is evaluated", async () => {
    const before = { process: globalThis.process, Date, random: Math.random, console: globalThis.console, setTimeout: globalThis.setTimeout };
    await reads(`const t = Date.now();\n${EXPORT}`);
    expect({ process: globalThis.process, Date, random: Math.random, console: globalThis.console, setTimeout: globalThis.setTimeout }).toEqual(before);
    expect(globalThis.process).toBe(before.process);
  });
});
