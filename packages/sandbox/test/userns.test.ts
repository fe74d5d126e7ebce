// Subordinate id ranges: when the caller owns ranges in /etc/subuid and /etc/subgid and
// newuidmap/newgidmap exist, the sandbox maps 0 -> caller and 1..N -> the range, so commands can
// run as other uids inside. Needs root to give the test user ("daemon", uid 1) ranges for the
// duration of the test; the files are restored byte for byte afterwards.

import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { run } from "../src/index";
import { busyboxMissing, cleanup, makeRootfs, ownedDir, tempDir, type Caller } from "./fixtures";

const USER: Caller = { name: "daemon", asUser: { uid: 1, gid: 1 }, uid: 1 };
const START = 300_000;
const COUNT = 65_536;

function rangeMissing(): string | undefined {
  if (process.getuid?.() !== 0) return "giving a test user subordinate ids needs root";
  if (!existsSync("/usr/bin/newuidmap") || !existsSync("/usr/bin/newgidmap")) return "newuidmap/newgidmap missing (apt install uidmap)";
  if (!/^daemon:x?:1:1:/m.test(readFileSync("/etc/passwd", "utf8"))) return "no user daemon with uid 1 in /etc/passwd";
  for (const file of ["/etc/subuid", "/etc/subgid"])
    if (/^(daemon|1):/m.test(readFileSync(file, "utf8"))) return `${file} already has ranges for daemon; not touching them`;
  return busyboxMissing();
}

const skip = rangeMissing();
if (skip) console.warn(`subordinate id tests skipped: ${skip}`);

describe.skipIf(skip)("subordinate id ranges", () => {
  afterAll(cleanup);

  it("maps the caller's full range and runs the command as another uid inside", async () => {
    const base = tempDir();
    const rootfs = makeRootfs(base);
    const upper = ownedDir(base, "upper", USER);
    const work = ownedDir(base, "work", USER);
    chmodSync(upper, 0o777); // uid 1000 inside writes to /
    const saved = { "/etc/subuid": readFileSync("/etc/subuid"), "/etc/subgid": readFileSync("/etc/subgid") };
    try {
      for (const file of Object.keys(saved)) {
        const text = readFileSync(file, "utf8");
        writeFileSync(file, `${text}${text && !text.endsWith("\n") ? "\n" : ""}daemon:${START}:${COUNT}\n`);
      }
      const r = await run(
        {
          root: { lowers: [rootfs], upper, work }, uid: 1000, gid: 1000,
          argv: ["/bin/sh", "-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; echo x > /by-1000"],
        },
        { asUser: USER.asUser },
      );
      expect(r.stderr).toBe("");
      const [uid, gid, ...maps] = r.stdout.trim().split("\n").map((line) => line.trim().split(/\s+/).join(" "));
      expect([uid, gid]).toEqual(["1000", "1000"]);
      expect(maps).toEqual([`0 1 1`, `1 ${START} ${COUNT}`, `0 1 1`, `1 ${START} ${COUNT}`]);
      expect(statSync(join(upper, "by-1000")).uid).toBe(START + 999);

      const root = await run({ root: { lowers: [rootfs] }, argv: ["id", "-u"] }, { asUser: USER.asUser });
      expect(root.stdout).toBe("0\n");
    } finally {
      for (const [file, content] of Object.entries(saved)) writeFileSync(file, content);
    }
  });
});
