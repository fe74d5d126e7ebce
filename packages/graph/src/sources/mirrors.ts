// Owns the order in which an http source's URLs are tried: the user's mirrors from
// CASTLE_MIRRORS first, then the declared url, then the declared mirrors.
//
// CASTLE_MIRRORS holds whitespace-separated entries, each either
//   <base>                  a hashed mirror serving files at <base>/sha256/<hex> (like Nix's
//                           tarballs mirrors); <base> is a URL or an absolute directory, or
//   <prefix>=<replacement>  a rewrite: a URL starting with prefix is also tried with
//                           replacement in its place.

import { pathToFileURL } from "node:url";

export type MirrorRule = { kind: "hashed"; base: string } | { kind: "rewrite"; prefix: string; replacement: string };

export function parseMirrors(value: string | undefined): MirrorRule[] {
  const rules: MirrorRule[] = [];
  for (const entry of (value ?? "").split(/\s+/)) {
    if (entry === "") continue;
    const eq = entry.indexOf("=");
    if (eq > 0) {
      rules.push({ kind: "rewrite", prefix: entry.slice(0, eq), replacement: toUrl(entry.slice(eq + 1)) });
    } else {
      rules.push({ kind: "hashed", base: toUrl(entry).replace(/\/+$/, "") });
    }
  }
  return rules;
}

/** Every URL to try for a file, best first, without duplicates. */
export function candidateUrls(spec: { url: string; mirrors: readonly string[]; sha256: string }, env: NodeJS.ProcessEnv): string[] {
  const declared = [spec.url, ...spec.mirrors];
  const out: string[] = [];
  for (const rule of parseMirrors(env.CASTLE_MIRRORS)) {
    if (rule.kind === "hashed") {
      out.push(`${rule.base}/sha256/${spec.sha256}`);
    } else {
      for (const url of declared) {
        if (url.startsWith(rule.prefix)) out.push(rule.replacement + url.slice(rule.prefix.length));
      }
    }
  }
  out.push(...declared);
  return [...new Set(out)];
}

/** An absolute directory becomes a file:// URL; anything else is kept as written. */
function toUrl(value: string): string {
  return value.startsWith("/") ? pathToFileURL(value).href : value;
}
