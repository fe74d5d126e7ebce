// Tests for the definition a system carries (inside/definition-tree.ts): a directory as it is; a
// git commit as a work tree kept with the system's state, moved to a new commit only when untouched.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { definitionTree } from "../src/inside/definition-tree";

function checkouts(): { dir: string; make(commit: string, text: string): string; of(commit: string): string } {
  const dir = mkdtempSync(join(tmpdir(), "castle-checkouts-"));
  return {
    dir,
    of: (commit) => join(dir, commit),
    make(commit, text) {
      mkdirSync(join(dir, commit, "systems/demo"), { recursive: true });
      writeFileSync(join(dir, commit, "systems/demo/castle.ts"), text);
      writeFileSync(join(dir, commit, ".castle-complete"), `${commit}\n`);
      return join(dir, commit);
    },
  };
}

describe("definitionTree", () => {
  it("mounts a directory as it is", () => {
    const warnings: string[] = [];
    const tree = definitionTree({ dir: "/src/repo/sub", root: "/src/repo", subdir: "sub", label: "/src/repo/sub" }, "/nowhere", () => "", (w) => warnings.push(w));
    expect(tree).toEqual({ host: "/src/repo", subdir: "sub" });
    expect(warnings).toEqual([]);
  });

  it("copies a commit once, follows an untouched tree to a new commit, and keeps an edited one", () => {
    const store = checkouts();
    const system = mkdtempSync(join(tmpdir(), "castle-system-"));
    const warnings: string[] = [];
    const run = (commit: string) =>
      definitionTree({ dir: "", root: store.of(commit), subdir: "systems/demo", label: "repo@main", commit }, system, store.of, (w) => warnings.push(w));
    const a = "a".repeat(40);
    const b = "b".repeat(40);
    const c = "c".repeat(40);
    store.make(a, "first");
    const tree = run(a);
    expect(tree).toEqual({ host: join(system, "castle-src"), subdir: "systems/demo" });
    expect(readFileSync(join(tree.host, "systems/demo/castle.ts"), "utf8")).toBe("first");
    expect(existsSync(join(tree.host, ".castle-complete"))).toBe(false);

    store.make(b, "second");
    run(b);
    expect(readFileSync(join(tree.host, "systems/demo/castle.ts"), "utf8")).toBe("second");
    expect(warnings).toEqual([]);

    writeFileSync(join(tree.host, "systems/demo/castle.ts"), "my edit");
    expect(run(b).host).toBe(tree.host); // same commit: nothing to do
    store.make(c, "third");
    run(c);
    expect(readFileSync(join(tree.host, "systems/demo/castle.ts"), "utf8")).toBe("my edit");
    expect(warnings).toEqual([
      `~/castle-src holds your edits of commit ${b.slice(0, 12)}; this run is commit ${c.slice(0, 12)}: the work tree is left as it is (move it away inside to get the new one)`,
    ]);
  });
});
