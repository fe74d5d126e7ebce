// Tests for the configuration: flag > environment > file > default for every setting, where each
// value came from, paths in the file relative to it, and a bad file — not JSON, an unknown key
// (with the closest known one), a value of the wrong kind — refused with CASTLE_CONFIG_INVALID.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { closest, configPath, loadConfig } from "../src/config/load-config";
import { SETTINGS } from "../src/config/settings";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** An XDG_CONFIG_HOME holding castle/config.json with these contents. */
function configHome(contents?: unknown): { env: NodeJS.ProcessEnv; file: string } {
  const home = mkdtempSync(join(tmpdir(), "castle-config-"));
  dirs.push(home);
  const file = join(home, "castle", "config.json");
  if (contents !== undefined) {
    mkdirSync(join(home, "castle"));
    writeFileSync(file, typeof contents === "string" ? contents : JSON.stringify(contents));
  }
  return { env: { XDG_CONFIG_HOME: home, HOME: "/home/someone" }, file };
}

describe("loadConfig", () => {
  it("gives every setting its default when nothing is set", () => {
    const { env, file } = configHome();
    const config = loadConfig(env);
    expect(config.file).toBe(file);
    expect(config["cache.import"]).toEqual({ value: [], from: "default" });
    expect(config["cache.export"]).toEqual({ value: undefined, from: "default" });
    expect(config["transfer.minBytesPerSecond"]).toEqual({ value: 100_000, from: "default" });
    for (const key of Object.keys(SETTINGS)) expect(config[key as keyof typeof SETTINGS].from).toBe("default");
  });

  it("ranks a flag over the environment over the file over the default, and says where each came from", () => {
    const { env, file } = configHome({
      "cache.import": ["file:///from/file"],
      "cache.export": "s3://file/export",
      "cache.signingKey": "keys/ci.secret",
      "transfer.windowSeconds": 5,
      "sources.mirrors": ["https://mirror.invalid/", "https://a=https://b"],
    });
    const all = { ...env, CASTLE_IMPORT_CACHE: "s3://env/a, oci://127.0.0.1:5000/b", CASTLE_EXPORT_CACHE: "s3://env/export", CASTLE_TRANSFER_MIN_RATE: "5000" };
    const config = loadConfig(all, { "cache.import": ["https://flag/cache"] });
    expect(config["cache.import"]).toEqual({ value: ["https://flag/cache"], from: "flag", where: "--import-cache" });
    expect(config["cache.export"]).toEqual({ value: "s3://env/export", from: "env", where: "CASTLE_EXPORT_CACHE" });
    expect(config["transfer.minBytesPerSecond"]).toEqual({ value: 5000, from: "env", where: "CASTLE_TRANSFER_MIN_RATE" });
    expect(config["transfer.windowSeconds"]).toEqual({ value: 5, from: "file", where: file });
    expect(config["cache.signingKey"].value).toBe(join(file, "..", "keys/ci.secret"));
    expect(config["sources.mirrors"].value).toEqual(["https://mirror.invalid/", "https://a=https://b"]);
    expect(loadConfig(all)["cache.import"].value).toEqual(["s3://env/a", "oci://127.0.0.1:5000/b"]);
    expect(loadConfig(env)["cache.import"]).toEqual({ value: ["file:///from/file"], from: "file", where: file });
  });

  it("expands ~ in paths, and finds the file through CASTLE_CONFIG or HOME", () => {
    const { env } = configHome({ "cache.signingKey": "~/keys/ci.secret" });
    expect(loadConfig(env)["cache.signingKey"].value).toBe("/home/someone/keys/ci.secret");
    expect(configPath({ HOME: "/home/x" })).toBe("/home/x/.config/castle/config.json");
    expect(configPath({ CASTLE_CONFIG: "/etc/castle.json", XDG_CONFIG_HOME: "/x" })).toBe("/etc/castle.json");
  });

  it("refuses a file that is not JSON, an unknown key with the closest match, and values of the wrong kind", () => {
    const cases: Array<[unknown, RegExp]> = [
      ["{ nope", /is not JSON/],
      [[], /one JSON object/],
      [{ "cache.imports": ["x"] }, /"cache\.imports" is not a setting \(did you mean "cache\.import"\?\)/],
      [{ "transfer.minRate": 1 }, /"transfer\.minRate" is not a setting/],
      [{ "zzz": 1 }, /"zzz" is not a setting$/],
      [{ "cache.import": "s3://one/string" }, /"cache\.import" must be a list of strings/],
      [{ "transfer.windowSeconds": "20" }, /must be a number/],
      [{ "transfer.windowSeconds": -1 }, /must be a number/],
      [{ "cache.export": 5 }, /must be a string/],
    ];
    for (const [contents, message] of cases) {
      const { env } = configHome(contents);
      expect(() => loadConfig(env), JSON.stringify(contents)).toThrow(expect.objectContaining({ code: "CASTLE_CONFIG_INVALID", message: expect.stringMatching(message) }));
    }
    const { env } = configHome();
    expect(() => loadConfig({ ...env, CASTLE_TRANSFER_WINDOW: "soon" })).toThrow(expect.objectContaining({ code: "CASTLE_CONFIG_INVALID", message: expect.stringMatching(/CASTLE_TRANSFER_WINDOW/) }));
  });
});

describe("closest", () => {
  it("suggests near names only", () => {
    expect(closest("cache.trustedKey", Object.keys(SETTINGS))).toBe("cache.trustedKeys");
    expect(closest("Cache.Export", Object.keys(SETTINGS))).toBe("cache.export");
    expect(closest("completely.different.thing", Object.keys(SETTINGS))).toBeUndefined();
  });
});
