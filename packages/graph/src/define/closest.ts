// Owns "did you mean": the known names closest to a mistyped one, by edit distance with
// transpositions (optimal string alignment: "aplets" → "applets", "runDep" → "runDeps",
// "bild" → "build", "bulidDeps" → "buildDeps"), ignoring case, accepting a name that is a
// prefix of a known one, and refusing suggestions too far away to be the same word.

/** Edits (insert, delete, substitute, swap two neighbours) that turn a into b. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** How many edits a word of this length may be away and still be the same word mistyped. */
function tolerance(length: number): number {
  if (length <= 3) return 1;
  if (length <= 6) return 2;
  return 3;
}

/**
 * The known names closest to `wanted`, best first (at most `limit`), or [] when none is close
 * enough to be what was meant.
 */
export function closestMatches(wanted: string, known: Iterable<string>, limit = 3): string[] {
  const needle = wanted.toLowerCase();
  const scored: { name: string; score: number }[] = [];
  for (const name of new Set(known)) {
    if (name === wanted) continue;
    const hay = name.toLowerCase();
    let score = editDistance(needle, hay);
    // A prefix of a longer name ("build" for "buildDeps") is close however many letters are missing.
    if (needle.length >= 3 && hay.startsWith(needle)) score = Math.min(score, 1);
    if (score <= tolerance(Math.max(needle.length, 1))) scored.push({ name, score });
  }
  scored.sort((a, b) => a.score - b.score || a.name.localeCompare(b.name));
  const best = scored[0]?.score;
  // Only the best ones: an exact-case or one-edit match hides looser guesses.
  return scored.filter((s) => s.score === best || s.score <= 1).slice(0, limit).map((s) => s.name);
}

/** " (did you mean "x"?)", " (did you mean "x" or "y"?)", or "" when nothing is close. */
export function didYouMean(wanted: string, known: Iterable<string>, quote = (name: string) => `"${name}"`): string {
  const close = closestMatches(wanted, known);
  if (close.length === 0) return "";
  const names = close.map(quote);
  const list = names.length === 1 ? names[0] : `${names.slice(0, -1).join(", ")} or ${names[names.length - 1]}`;
  return ` (did you mean ${list}?)`;
}
