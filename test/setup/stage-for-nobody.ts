// vitest global setup: when the suite runs as root from a checkout that uid 65534 cannot reach
// (a clone under /root, mode 0700), Castle's C programs are copied once into a temp directory
// every user can reach, and the tests are pointed at the copies (CASTLE_SANDBOX_HELPER,
// CASTLE_TREEUTIL) — the tests that drop to uid 65534 exec them as that user. Says so when it
// does; removes the copies at the end.

import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO, reachableByOthers } from "../fixtures/reachable";

const PROGRAMS: [variable: string, path: string][] = [
  ["CASTLE_SANDBOX_HELPER", "packages/sandbox/helper/castle-sandbox"],
  ["CASTLE_TREEUTIL", "packages/cache/native/castle-treeutil"],
];

export default function setup(): () => void {
  if (process.getuid?.() !== 0) return () => {};
  const unreachable = PROGRAMS.filter(([variable, path]) => !process.env[variable] && existsSync(join(REPO, path)) && !reachableByOthers(join(REPO, path)));
  if (unreachable.length === 0) return () => {};
  const dir = mkdtempSync(join(tmpdir(), "castle-test-programs-"));
  chmodSync(dir, 0o755);
  for (const [variable, path] of unreachable) {
    const copy = join(dir, path.split("/").pop()!);
    copyFileSync(join(REPO, path), copy);
    chmodSync(copy, 0o755);
    process.env[variable] = copy;
  }
  console.log(`[setup] uid 65534 cannot reach ${REPO} (a parent directory is closed to other users): its C programs are staged in ${dir}`);
  return () => rmSync(dir, { recursive: true, force: true });
}
