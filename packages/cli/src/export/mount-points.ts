// Owns the directories a root filesystem needs as mount points and that layers do not carry
// (the sandbox mounts them when the system runs): /dev, /proc, /sys and /tmp, added to an
// exported root where no layer made them, so the tarball works in a chroot or a container.

import type { TreeEntry } from "@castle/cache";

const MOUNT_POINTS: { name: string; mode: number }[] = [
  { name: "dev", mode: 0o755 },
  { name: "proc", mode: 0o555 },
  { name: "sys", mode: 0o555 },
  { name: "tmp", mode: 0o1777 },
];

/** The entries (parents first, names sorted at each level) with the missing mount points added. */
export function withMountPoints(entries: readonly TreeEntry[]): TreeEntry[] {
  const top = new Set(entries.filter((e) => !e.path.includes("/")).map((e) => e.path));
  const missing = MOUNT_POINTS.filter((m) => !top.has(m.name)).map((m): TreeEntry => ({ kind: "dir", path: m.name, mode: m.mode, opaque: false }));
  if (missing.length === 0) return [...entries];
  const out: TreeEntry[] = [];
  for (const entry of entries) {
    // Before the first top-level entry that sorts after it, each missing one goes in as its own group.
    if (!entry.path.includes("/")) while (missing.length > 0 && missing[0]!.path < entry.path) out.push(missing.shift()!);
    out.push(entry);
  }
  out.push(...missing);
  return out;
}
