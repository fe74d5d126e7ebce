// Owns the shape every benchmark reports (one row per comparison, Castle beside its peer, both
// measured in the same run) and the small statistics they share.

export interface BenchRow {
  name: string;
  castleMs: number;
  peerMs: number;
  /** What Castle is compared with: a peer tool measured in the same run, or a stated target. */
  peer: string;
  /** castleMs / peerMs: below 1 means Castle is faster. */
  ratio: number;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function row(name: string, castleMs: number, peerMs: number, peer: string): BenchRow {
  return { name, castleMs: +castleMs.toFixed(2), peerMs: +peerMs.toFixed(2), peer, ratio: +(castleMs / peerMs).toFixed(3) };
}

export function printRows(rows: BenchRow[]): void {
  console.log(markdownTable(rows));
}

export function markdownTable(rows: BenchRow[]): string {
  const lines = ["| benchmark | Castle (ms) | peer | peer (ms) | ratio |", "|---|---:|---|---:|---:|"];
  for (const r of rows) lines.push(`| ${r.name} | ${r.castleMs} | ${r.peer} | ${r.peerMs} | ${r.ratio} |`);
  return lines.join("\n");
}

/** Runs `fn` once per entry of `sides` per round, interleaved, and returns each side's times. */
export async function interleave(rounds: number, sides: Record<string, () => Promise<void> | void>): Promise<Record<string, number[]>> {
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(sides).map((k) => [k, []]));
  for (let i = 0; i < rounds; i++) {
    for (const [name, fn] of Object.entries(sides)) {
      const start = performance.now();
      await fn();
      times[name]!.push(performance.now() - start);
    }
  }
  return times;
}
