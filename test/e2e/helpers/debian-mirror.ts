// Owns deciding whether the distro tests and benchmarks can reach a Debian mirror (the one
// examples/distro would use: CASTLE_DEBIAN_MIRROR or the host's apt sources), by fetching the head
// of one pinned .deb. Gives the reason to skip when it cannot, or undefined.

import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import lock from "../../../examples/distro/bootstrap/debs.lock.json";
import { debianMirrors } from "../../../examples/distro/mirrors";

export async function debianMirrorProblem(env: NodeJS.ProcessEnv = process.env, timeoutMs = 15_000): Promise<string | undefined> {
  const mirrors = debianMirrors(env);
  if (mirrors.main.every((m) => m.startsWith("file:///CASTLE_DEBIAN_MIRROR"))) {
    return "no Debian mirror is configured (set CASTLE_DEBIAN_MIRROR or add a deb source to /etc/apt)";
  }
  const deb = lock.packages.find((p) => p.name === "busybox-static")!;
  const failures: string[] = [];
  for (const base of mirrors.main) {
    const url = `${base}/${encodeURI(deb.path)}`;
    if (url.startsWith("file:")) {
      if (existsSync(fileURLToPath(url))) return undefined;
      failures.push(`${url}: no such file`);
      continue;
    }
    try {
      const response = await fetch(url, { headers: { range: "bytes=0-7" }, signal: AbortSignal.timeout(timeoutMs) });
      await response.body?.cancel();
      if (response.ok) return undefined;
      failures.push(`${url}: HTTP ${response.status}`);
    } catch (error) {
      failures.push(`${url}: ${(error as Error).message}`);
    }
  }
  return `the Debian mirror (${mirrors.from}) is unreachable: ${failures.join("; ")}`;
}
