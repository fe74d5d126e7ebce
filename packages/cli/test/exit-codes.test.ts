// Golden test of the exit statuses scripts rely on: every code of the closed error catalogue, its
// status written out literally (a change here is a change users see), and the status table that
// `castle --help` prints covering every status the catalogue uses.

import { CastleError, ERROR_CATALOGUE, type CastleErrorCode } from "@castle/errors";
import { describe, expect, it } from "vitest";
import { EXIT_TABLE, exitCodeFor } from "../src/context/exit-codes";

const GOLDEN: Record<number, CastleErrorCode[]> = {
  1: ["CASTLE_BUILD_FAILED", "CASTLE_BUILD_SKIPPED", "CASTLE_INSTALL"],
  2: ["CASTLE_USAGE", "CASTLE_INSTANCE_BUSY", "CASTLE_CONFIG_INVALID", "CASTLE_KEY_INVALID", "CASTLE_KEY_EXISTS", "CASTLE_RUN_NOT_FOUND"],
  3: [
    "CASTLE_DEFINITION", "CASTLE_DEFINITION_MISSING", "CASTLE_DEFINITION_SYNTAX", "CASTLE_DEFINITION_ERROR",
    "CASTLE_DEFINITION_EXPORT", "CASTLE_CYCLE", "CASTLE_MISSING_DEPENDENCY", "CASTLE_DUPLICATE_LAYER",
    "CASTLE_DUPLICATE_SOURCE", "CASTLE_MOUNT_OVERLAP", "CASTLE_TOO_MANY_LAYERS", "CASTLE_OVERRIDE_UNKNOWN",
  ],
  4: [
    "CASTLE_FETCH_FAILED", "CASTLE_CHECKSUM_MISMATCH", "CASTLE_GIT_REF_MISSING", "CASTLE_GIT_COMMIT_MISSING",
    "CASTLE_GIT_SUBDIR_MISSING", "CASTLE_REPO_NOT_CACHED", "CASTLE_OVERRIDE_MISSING", "CASTLE_SOURCE_MISSING",
    "CASTLE_SOURCE_INVALID", "CASTLE_SOURCE_CHANGED", "CASTLE_SOURCE_IO", "CASTLE_EXTRACT_FAILED",
    "CASTLE_MISSING_TOOL", "CASTLE_ARCHIVE_UNSAFE",
  ],
  5: [
    "CASTLE_CACHE_IO", "CASTLE_CACHE_LOCK", "CASTLE_CACHE_MISSING_TOOL", "CASTLE_CACHE_MISSING_TREE", "CASTLE_DIR_UNUSABLE",
    "CASTLE_LOG_MISSING", "CASTLE_STORE_PRUNED", "CASTLE_DIGEST_MISMATCH", "CASTLE_ARCHIVE_CORRUPT", "CASTLE_ARCHIVE_IO",
    "CASTLE_ARCHIVE_NO_ZSTD", "CASTLE_ARCHIVE_TARGET", "CASTLE_ARCHIVE_UNSUPPORTED", "CASTLE_REMOTE_URL",
    "CASTLE_REMOTE_KEY", "CASTLE_REMOTE_UNREACHABLE", "CASTLE_REMOTE_TIMEOUT", "CASTLE_REMOTE_AUTH",
    "CASTLE_REMOTE_CORRUPT", "CASTLE_REMOTE_ERROR", "CASTLE_REMOTE_PRUNE", "CASTLE_CACHE_NO_SPACE",
    "CASTLE_REMOTE_UNTRUSTED", "CASTLE_REMOTE_UNSIGNED", "CASTLE_REMOTE_UNSUPPORTED",
  ],
  6: ["CASTLE_INSTANCE_NOT_FOUND"],
  125: ["CASTLE_SANDBOX_SETUP", "CASTLE_SANDBOX_SPEC", "CASTLE_SANDBOX_ENTER", "CASTLE_SANDBOX_MISSING_HELPER"],
  126: ["CASTLE_SANDBOX_NOT_EXECUTABLE"],
  127: ["CASTLE_SANDBOX_NOT_FOUND"],
  130: ["CASTLE_CANCELLED"],
};

describe("exit statuses", () => {
  it("every catalogue code exits with its golden status, and the golden table lists every code", () => {
    const golden = Object.entries(GOLDEN).flatMap(([status, codes]) => codes.map((code) => [code, Number(status)] as const));
    expect(golden.map(([code]) => code).sort()).toEqual(Object.keys(ERROR_CATALOGUE).sort());
    for (const [code, status] of golden) {
      expect(exitCodeFor(new CastleError(code, "x")), code).toBe(status);
      expect(ERROR_CATALOGUE[code].meaning.length, `${code} has a one-line meaning`).toBeGreaterThan(10);
      expect(ERROR_CATALOGUE[code].meaning).not.toMatch(/\n/);
    }
  });

  it("a cancellation by a signal exits 128 + that signal", () => {
    expect(exitCodeFor(new CastleError("CASTLE_CANCELLED", "x", { data: { signal: "SIGTERM" } }))).toBe(143);
    expect(exitCodeFor(new CastleError("CASTLE_CANCELLED", "x", { data: { signal: "SIGHUP" } }))).toBe(129);
    expect(exitCodeFor(new CastleError("CASTLE_CANCELLED", "x"))).toBe(130);
  });

  it("anything that is not a catalogued CastleError is an internal error: 1", () => {
    expect(exitCodeFor(new Error("boom"))).toBe(1);
    expect(exitCodeFor("a string")).toBe(1);
    const foreign = Object.assign(new Error("from another copy"), { code: "CASTLE_NOT_IN_THE_CATALOGUE" });
    expect(exitCodeFor(foreign)).toBe(1);
  });

  it("the help's status table names every status a code can exit with", () => {
    for (const status of Object.keys(GOLDEN)) expect(EXIT_TABLE).toMatch(new RegExp(`^  ${status} +\\S`, "m"));
  });
});
