// Tests for Castle's bottom layer of mount points (inside/mount-points.ts): what it holds, that
// equal requests share one directory, and that different ones do not.

import { lstatSync, mkdtempSync, readdirSync, readlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { mountPointLayer } from "../src/inside/mount-points";

describe("mountPointLayer", () => {
  it("holds empty dirs, empty files and links, and is shared by equal requests", () => {
    const data = mkdtempSync(join(tmpdir(), "castle-mount-points-"));
    const entries = [
      { kind: "dir" as const, path: "/.castle" },
      { kind: "file" as const, path: "/etc/resolv.conf" },
      { kind: "symlink" as const, path: "/usr/local/bin/castle", target: "/.castle/bin/castle" },
    ];
    const dir = mountPointLayer(data, entries);
    expect(readdirSync(dir).sort()).toEqual([".castle", "etc", "usr"]);
    expect(lstatSync(join(dir, "etc/resolv.conf")).size).toBe(0);
    expect(readlinkSync(join(dir, "usr/local/bin/castle"))).toBe("/.castle/bin/castle");
    expect(mountPointLayer(data, [...entries].reverse())).toBe(dir);
    expect(mountPointLayer(data, entries.slice(1))).not.toBe(dir);
    expect(readdirSync(join(data, "mount-points"))).toHaveLength(2); // no temp dirs left
  });
});
