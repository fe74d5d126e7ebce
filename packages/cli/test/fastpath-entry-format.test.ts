// Tests for the fast-path entry's wire format, which the native launcher reads (launcher/entry.c):
// the bytes of a small entry as a literal golden value, a round trip, and what it refuses.

import { describe, expect, it } from "vitest";
import { identityFromToken, identityToken, parseEntry, serializeEntry, type FastPathEntry } from "../src/fastpath/entry-format";

const file = { kind: "present" as const, dev: 2049, ino: 77, mode: 0o100644, size: 5, mtimeMs: 1796615938878.7559, ctimeMs: 1796615938879.25 };

const entry: FastPathEntry = {
  key: { dir: "/d", arg: "d", tty: false, command: ["/bin/true"] },
  node: file,
  files: [{ path: "/d/castle.ts", follow: true, identity: file }, { path: "/d/x", follow: false, identity: { kind: "absent" } }],
  env: [["HOME", "/h"], ["TZ", undefined]],
  envPrefixes: ["CASTLE_"],
  cwd: "/w",
  generation: { file: "/s/locks/prune-generation", value: 2 },
  trees: ["/s/trees/t"],
  root: { file: "/s/roots/x.json", prefix: '{"usedAt":"', suffix: '"}\n' },
  pin: { dir: "/s/pins", tmp: "/s/tmp", tail: '"keys":["k"],"digests":["d"]}\n' },
  slot: "/st/slots/x",
  upper: { upper: "/u", work: "/w2", nested: "/n" },
  mkdirs: ["/st/x/src"],
  exists: [{ path: "/u/srv", follow: true, exists: true }, { path: "/u/etc/hosts", follow: false, exists: false }],
  helper: "/c/castle-sandbox",
  signals: { forward: ["SIGTERM", "SIGHUP"], ignore: ["SIGINT"] },
  instance: { dir: "/st/instances", system: "x", fields: '"system":"x"' },
  errors: [{ status: 127, exit: 127, prefix: "castle: gone\n", suffix: "", withMessage: false }],
  spec: Buffer.from("spec\0bytes\0"),
};

describe("the fast-path entry format", () => {
  it("writes castle-fastpath/1 ops, the spec as counted bytes, then end (golden)", () => {
    const text = serializeEntry(entry).toString("utf8").split("\0").join("|");
    expect(text).toBe(
      "castle-fastpath/1|key|/d|d|0|1|/bin/true|node|2049:77:33188:5:1796615938878.7559:1796615938879.25|" +
        "env|HOME|/h|unset|TZ|env-prefix|CASTLE_|cwd|/w|" +
        "stat|/d/castle.ts|2049:77:33188:5:1796615938878.7559:1796615938879.25|lstat|/d/x|-|" +
        "generation|/s/locks/prune-generation|2|tree|/s/trees/t|root|/s/roots/x.json|{\"usedAt\":\"|\"}\n|" +
        "pin|/s/pins|/s/tmp|\"keys\":[\"k\"],\"digests\":[\"d\"]}\n|slot|/st/slots/x|upper|/u|/w2|/n|mkdir|/st/x/src|exists|/u/srv|1|lexists|/u/etc/hosts|0|helper|/c/castle-sandbox|signals|SIGTERM,SIGHUP|SIGINT|" +
        'instance|/st/instances|x|"system":"x"|error|127|127|castle: gone\n||0|spec|11|spec|bytes|end|',
    );
  });

  it("reads back what it wrote", () => {
    expect(parseEntry(serializeEntry(entry))).toEqual(entry);
    expect(identityFromToken(identityToken(file))).toEqual(file);
  });

  it("refuses a NUL in a string, and an entry cut short or with bytes after its end", () => {
    expect(() => serializeEntry({ ...entry, env: [["A", "x\0y"]] })).toThrow(/NUL/);
    const bytes = serializeEntry(entry);
    expect(() => parseEntry(bytes.subarray(0, bytes.length - 3))).toThrow();
    expect(() => parseEntry(Buffer.concat([bytes, Buffer.from("x")]))).toThrow(/end/);
  });
});
