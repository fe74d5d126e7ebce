// Tests the mount points added to an exported root (cli/src/export/mount-points.ts): the missing
// ones among /dev, /proc, /sys and /tmp, in sorted place, with their usual modes; present ones
// kept as the layers made them.

import { describe, expect, it } from "vitest";
import type { TreeEntry } from "@castle/cache";
import { withMountPoints } from "../src/export/mount-points";

const dir = (path: string, mode = 0o755): TreeEntry => ({ kind: "dir", path, mode, opaque: false });
const file = (path: string): TreeEntry => ({ kind: "file", path, mode: 0o644, size: 1, absPath: `/x/${path}` });

describe("withMountPoints", () => {
  it("adds the missing mount points in sorted place, as empty directories", () => {
    const entries = [dir("bin"), file("bin/sh"), dir("etc"), file("etc/motd"), dir("tmp", 0o700), dir("usr")];
    expect(withMountPoints(entries).map((e) => [e.path, e.kind === "dir" ? e.mode.toString(8) : e.kind])).toEqual([
      ["bin", "755"], ["bin/sh", "file"], ["dev", "755"], ["etc", "755"], ["etc/motd", "file"], ["proc", "555"], ["sys", "555"], ["tmp", "700"], ["usr", "755"],
    ]);
  });

  it("adds them all to an empty root, and nothing when they are there", () => {
    expect(withMountPoints([]).map((e) => e.path)).toEqual(["dev", "proc", "sys", "tmp"]);
    const full = ["dev", "proc", "sys", "tmp"].map((p) => dir(p));
    expect(withMountPoints(full)).toEqual(full);
  });
});
