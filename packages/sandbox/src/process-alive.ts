// Owns the one answer to "is this process still there?", asked by the cgroup sweep here, by
// the store's dead-owner sweeps (cache/src/store/owned-names.ts) before they remove what a
// killed Castle left, and by `castle log -f` (is the run it follows still going?).

/** True while a process with this pid exists (one we may not signal counts: it exists). */
export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
