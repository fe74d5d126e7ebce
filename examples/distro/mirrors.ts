// Owns choosing the Debian mirror the distro downloads from — the user's setting, never a host
// name written in this repository:
//   CASTLE_DEBIAN_MIRROR           base URL(s) of a Debian archive, whitespace-separated, best
//                                  first (e.g. the one in your apt sources)
//   CASTLE_DEBIAN_SECURITY_MIRROR  base URL(s) of the Debian security archive (default: each
//                                  CASTLE_DEBIAN_MIRROR with "-security" appended, Debian's layout)
// and otherwise the host's apt configuration (/etc/apt/sources.list.d/*.sources `URIs:` and
// *.list / sources.list `deb` lines). A mirror never changes a layer key: http sources are keyed
// by their sha256 pins, so every mirror gives the same layers. No import of "castle" here, so
// tests and benchmarks can use it too.

import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

export interface DebianMirrors {
  /** Base URLs of the main archive, best first. */
  main: string[];
  /** Base URLs of the security archive, best first. */
  security: string[];
  /** Where they came from, for messages. */
  from: string;
}

/** When no mirror is configured, downloads fail with a URL that says what to do. */
const UNSET = "file:///CASTLE_DEBIAN_MIRROR-is-not-set-and-apt-has-no-debian-sources";

/** The Debian mirrors to use: CASTLE_DEBIAN_MIRROR, else the host's apt sources. */
export function debianMirrors(env: NodeJS.ProcessEnv = process.env, aptDir = "/etc/apt"): DebianMirrors {
  const words = (value: string | undefined) => (value ?? "").split(/\s+/).filter(Boolean).map((u) => u.replace(/\/+$/, ""));
  const main = words(env.CASTLE_DEBIAN_MIRROR);
  if (main.length > 0) {
    const security = words(env.CASTLE_DEBIAN_SECURITY_MIRROR);
    return { main, security: security.length > 0 ? security : main.map((m) => `${m}-security`), from: "CASTLE_DEBIAN_MIRROR" };
  }
  const apt = aptSources(aptDir);
  const pick = (security: boolean) =>
    [...new Set(apt.filter((s) => s.suites.some((suite) => suite.endsWith("-security")) === security).map((s) => s.uri))];
  const fromApt = { main: pick(false), security: pick(true), from: `apt sources in ${aptDir}` };
  if (fromApt.main.length === 0) return { main: [UNSET], security: [UNSET], from: "nowhere (set CASTLE_DEBIAN_MIRROR)" };
  if (fromApt.security.length === 0) fromApt.security = fromApt.main.map((m) => `${m}-security`);
  return fromApt;
}

interface AptSource {
  uri: string;
  suites: string[];
}

/** `deb` entries of the host's apt configuration (deb822 .sources files and one-line .list files). */
export function aptSources(aptDir: string): AptSource[] {
  const out: AptSource[] = [];
  const read = (file: string): string => {
    try {
      return readFileSync(file, "utf8");
    } catch {
      return "";
    }
  };
  let listDir: string[] = [];
  try {
    listDir = readdirSync(join(aptDir, "sources.list.d")).sort();
  } catch {
    listDir = [];
  }
  for (const name of listDir.filter((n) => n.endsWith(".sources"))) {
    for (const stanza of read(join(aptDir, "sources.list.d", name)).split(/\n\s*\n/)) {
      const field = (key: string) => new RegExp(`^${key}:[ \\t]*(.*)$`, "mi").exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
      if (!field("Types").includes("deb") || field("Enabled")[0]?.toLowerCase() === "no") continue;
      for (const uri of field("URIs")) out.push({ uri: uri.replace(/\/+$/, ""), suites: field("Suites") });
    }
  }
  const lists = [join(aptDir, "sources.list"), ...listDir.filter((n) => n.endsWith(".list")).map((n) => join(aptDir, "sources.list.d", n))];
  for (const file of lists) {
    for (const raw of read(file).split("\n")) {
      const line = raw.replace(/#.*/, "").replace(/\[[^\]]*\]/, "").trim().split(/\s+/);
      if (line[0] === "deb" && line[1] && line[2]) out.push({ uri: line[1].replace(/\/+$/, ""), suites: [line[2]] });
    }
  }
  return out.filter((s) => /^(https?|file):/.test(s.uri));
}
