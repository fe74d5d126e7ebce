// Tests for --mount parsing and checks (inside/mount-flags.ts): the forms docker users write,
// and every mistake caught before anything runs, as a usage error naming the flag.

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkReservedOverlaps, overlaps, parseMountFlags } from "../src/inside/mount-flags";

const host = mkdtempSync(join(tmpdir(), "castle-mount-flags-"));
writeFileSync(join(host, "file.txt"), "x");

describe("parseMountFlags", () => {
  it("reads HOST:GUEST, :ro and :rw, relative host paths, files, and puts parents first", () => {
    const mounts = parseMountFlags([`${host}/file.txt:/etc/app.conf:ro`, `.:/data/sub:rw`, `${host}:/data/`], "run", host);
    expect(mounts).toEqual([
      { host, guest: "/data", readonly: false, isDir: true },
      { host: join(host, "file.txt"), guest: "/etc/app.conf", readonly: true, isDir: false },
      { host, guest: "/data/sub", readonly: false, isDir: true },
    ]);
    expect(parseMountFlags(undefined, "run")).toEqual([]);
  });

  it.each([
    [`${host}/missing:/data`, /--mount \S+missing:\/data: \S+missing does not exist on the host/],
    [`${host}:data`, /the guest path data must be absolute/],
    [`${host}:/`, /cannot mount over the system's root/],
    [`${host}:/a/../..`, /cannot mount over the system's root/],
    [`${host}:/proc`, /\/proc is the sandbox's own \/proc/],
    [`${host}:/dev/shm`, /\/dev\/shm is the sandbox's own \/dev/],
    [`${host}:/sys/fs`, /\/sys\/fs is the kernel's \/sys/],
    [`${host}:/data:rx`, /unknown option "rx"/],
    [`${host}`, /--mount takes HOST:GUEST\[:ro\], got/],
    [`:/data`, /--mount takes HOST:GUEST\[:ro\], got/],
  ])("refuses %s", (value, message) => {
    expect(() => parseMountFlags([value], "run", host)).toThrow(message);
    try {
      parseMountFlags([value], "run", host);
    } catch (error) {
      expect((error as { code: string }).code).toBe("CASTLE_USAGE");
    }
  });

  it("refuses two mounts on one guest path", () => {
    expect(() => parseMountFlags([`${host}:/data`, `${host}:/data/`], "run")).toThrow(/\/data is already the target of --mount/);
  });
});

describe("checkReservedOverlaps", () => {
  const reserved = [{ path: "/.castle", what: "where Castle itself is mounted" }];
  it("refuses a mount at, inside or above a reserved path, and allows the rest", () => {
    const at = (guest: string) => [{ host, guest, readonly: false, isDir: true }];
    expect(() => checkReservedOverlaps(at("/.castle/x"), reserved, "run")).toThrow(/overlaps \/\.castle, where Castle itself is mounted/);
    expect(() => checkReservedOverlaps(at("/.castle"), reserved, "run")).toThrow(/overlaps/);
    expect(() => checkReservedOverlaps(at("/.castlex"), reserved, "run")).not.toThrow();
    expect(overlaps("/", "/a")).toBe(false); // "/" is refused by the parser, not here
    expect(overlaps("/a", "/a/b")).toBe(true);
  });
});
