// Tests for group commits of syncs: callers that ask while a flush runs share the next one, and
// nobody is answered by a flush that started before they asked.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { GroupSync, syncFilesystem } from "../src/store/group-sync";
import { tempDir } from "./helpers/trees";

describe("GroupSync", () => {
  it("answers each caller with a flush that started after it asked, sharing flushes", async () => {
    const dir = tempDir();
    const log: string[] = [];
    let flushes = 0;
    const group = new GroupSync(dir, async (path) => {
      const n = ++flushes;
      log.push(`start ${n}`);
      await syncFilesystem(path);
      await new Promise((resolve) => setTimeout(resolve, 30));
      log.push(`end ${n}`);
    });
    const waiters: Array<Promise<void>> = [];
    const ask = (name: string) => {
      log.push(`ask ${name}`);
      waiters.push(group.sync().then(() => void log.push(`done ${name}`)));
    };
    ask("a");
    await new Promise((resolve) => setTimeout(resolve, 5));
    for (const name of ["b", "c", "d", "e"]) ask(name);
    await Promise.all(waiters);
    expect(flushes).toBe(2);
    // a is answered by the first flush; b..e asked while it ran, so only the second answers them.
    expect(log.indexOf("done a")).toBeGreaterThan(log.indexOf("end 1"));
    for (const name of ["b", "c", "d", "e"]) {
      expect(log.indexOf(`done ${name}`)).toBeGreaterThan(log.indexOf("end 2"));
      expect(log.indexOf("start 2")).toBeGreaterThan(log.indexOf(`ask ${name}`));
    }
    writeFileSync(join(dir, "after"), "x");
    await group.sync();
    expect(flushes).toBe(3);
  });
});
