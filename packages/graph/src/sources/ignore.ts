// Owns the ignore patterns of local sources: a name ("node_modules", matched at any depth), a
// relative path ("build/out", anchored at the source root), or a glob with `*` (within a path
// component), `**` (across components) and `?` (one character). A trailing "/" matches only
// directories; a leading "/" anchors a bare name. Node 20 has no glob matcher, hence this one.

/** True when the entry at relPath ("a/b/c", no leading slash) should be left out. */
export type IgnoreMatcher = (relPath: string, isDir: boolean) => boolean;

interface Rule {
  regex: RegExp;
  /** Matched against the whole relative path, else against the last component. */
  anchored: boolean;
  dirOnly: boolean;
}

export function compileIgnore(patterns: readonly string[]): IgnoreMatcher {
  const rules: Rule[] = [];
  for (const raw of patterns) {
    let pattern = raw.trim();
    const dirOnly = pattern.endsWith("/");
    pattern = pattern.replace(/\/+$/, "").replace(/^(\.\/)+/, "");
    let anchored = false;
    if (pattern.startsWith("/")) {
      anchored = true;
      pattern = pattern.replace(/^\/+/, "");
    }
    if (pattern === "" || pattern === ".") continue;
    if (pattern.includes("/")) anchored = true;
    rules.push({ regex: globToRegExp(pattern), anchored, dirOnly });
  }
  if (rules.length === 0) return () => false;
  return (relPath, isDir) => {
    const slash = relPath.lastIndexOf("/");
    const name = slash < 0 ? relPath : relPath.slice(slash + 1);
    for (const rule of rules) {
      if (rule.dirOnly && !isDir) continue;
      if (rule.regex.test(rule.anchored ? relPath : name)) return true;
    }
    return false;
  };
}

/** A glob as an anchored regular expression over "/"-separated paths. */
export function globToRegExp(glob: string): RegExp {
  let out = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*") {
      if (glob[i + 1] === "*") {
        const atStart = i === 0 || glob[i - 1] === "/";
        const slashAfter = glob[i + 2] === "/";
        if (atStart && slashAfter) {
          out += "(?:.*/)?"; // "**/" matches zero or more whole directories.
          i += 2;
        } else {
          out += ".*";
          i += 1;
        }
      } else {
        out += "[^/]*";
      }
    } else if (c === "?") {
      out += "[^/]";
    } else {
      out += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
    }
  }
  return new RegExp(`^${out}$`, "s");
}
