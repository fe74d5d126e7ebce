// Tests for the S3 access layer's lazy loading: importing @castle/cache and opening a remote must
// not load the AWS SDK (~150 ms); the first request does. Checked in a fresh Node process with
// module hooks that report every SDK import.

import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "../../..");

describe("S3Access", () => {
  it("loads the AWS SDK on first use only", () => {
    const script = `
      const cache = await import(${JSON.stringify(join(here, "../src/index.ts"))});
      const remote = cache.openRemote("s3://castle/x?endpoint=http://127.0.0.1:9", { credentials: { accessKeyId: "a", secretAccessKey: "b" }, maxAttempts: 1 });
      process.stderr.write("OPENED\\n");
      await remote.lookup("a".repeat(64)).catch((e) => process.stderr.write("LOOKUP " + e.code + "\\n"));`;
    const result = spawnSync(process.execPath, ["--import", "tsx", "--import", join(here, "helpers/sdk-import-hooks.mjs"), "--input-type=module", "-e", script], {
      cwd: repo, encoding: "utf8", timeout: 30_000,
    });
    const lines = result.stderr.split("\n").filter((l) => /^(OPENED|LOOKUP|SDK-IMPORT)/.test(l));
    expect(lines[0]).toBe("OPENED");
    expect(lines.some((l) => l.startsWith("SDK-IMPORT @aws-sdk/client-s3"))).toBe(true);
    expect(lines.at(-1)).toBe("LOOKUP CASTLE_REMOTE_UNREACHABLE");
  });
});
