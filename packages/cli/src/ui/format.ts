// Owns how the progress views spell things: byte counts, durations, rates, why a layer is being
// built, the end-of-build summary line, and making a build's log line safe to print (no escape
// codes or control characters from the build can reach the terminal or a CI log).

import type { BuildReason, BuildStats } from "@castle/graph";

const BYTE_UNITS = ["B", "kB", "MB", "GB", "TB"] as const;

/** The decimal unit that suits n bytes, as [divisor, name]. */
function byteUnit(n: number): [number, string] {
  let unit = 0;
  while (unit < BYTE_UNITS.length - 1 && Math.abs(n) >= 1000 ** (unit + 1)) unit++;
  return [1000 ** unit, BYTE_UNITS[unit] ?? "B"];
}

/** "512 B", "3.2 MB", "1.1 GB" (decimal units). */
export function formatBytes(n: number): string {
  const [divisor, name] = byteUnit(n);
  return divisor === 1 ? `${Math.round(n)} B` : `${(n / divisor).toFixed(1)} ${name}`;
}

/** "3.2/5.0 MB": both counts in the unit of the total. */
export function formatByteProgress(done: number, total: number): string {
  const [divisor, name] = byteUnit(Math.max(done, total));
  if (divisor === 1) return `${Math.round(done)}/${Math.round(total)} B`;
  return `${(done / divisor).toFixed(1)}/${(total / divisor).toFixed(1)} ${name}`;
}

/** "2.1 MB/s". */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** "0.3s", "21.4s", "1m02s", "2h05m". */
export function formatDuration(ms: number): string {
  const clamped = Math.max(0, ms);
  if (clamped < 59_950) return `${(clamped / 1000).toFixed(1)}s`;
  const seconds = Math.round(clamped / 1000);
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s`;
  const minutes = Math.round(seconds / 60);
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}

/** "new", "forced", or the first changes, e.g. "dependency musl: output 1a2b… → 9f8e…; +2 more". */
export function describeReason(reason: BuildReason, shown = 2): string {
  if (reason.kind !== "changed") return reason.kind;
  if (reason.changes.length === 0) return "inputs changed";
  const first = reason.changes.slice(0, shown).map(stripTerminalControls).join("; ");
  const more = reason.changes.length - shown;
  return more > 0 ? `${first}; +${more} more` : first;
}

// CSI (ESC [ … final), OSC (ESC ] … BEL or ESC \), other two-byte ESC sequences, C1 CSI.
const ESCAPE_SEQUENCE = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -~]?|\x9b[0-?]*[ -/]*[@-~]/g;
// C0 controls except tab, DEL, and C1 controls.
const CONTROL_CHARACTER = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;

/**
 * A build's output line as it would look once drawn: escape sequences removed, a carriage
 * return keeps only what was written after it (progress meters), other controls dropped.
 */
export function stripTerminalControls(line: string): string {
  let text = line.replace(ESCAPE_SEQUENCE, "");
  if (text.includes("\r")) {
    const segments = text.split("\r").filter((segment) => segment.length > 0);
    text = segments[segments.length - 1] ?? "";
  }
  return text.replace(CONTROL_CHARACTER, "");
}

/** What the views add to the scheduler's stats for the summary. */
export interface SummaryExtras {
  skipped: number;
  /** Sources fetched, unpacked or copied, and the bytes that came over the network for them. */
  sources: number;
  sourceBytes: number;
  /** About how long building what came from a cache would have taken (see estimateSaved). */
  savedMs: number | undefined;
  /** The build was interrupted (by this signal, if one is named): its failures are stops. */
  interrupted?: { signal: string | undefined } | undefined;
}

/** The one-line outcome of a build, shared by both views. */
export function summarizeBuild(ok: boolean, stats: BuildStats, extras: SummaryExtras): string {
  return summarizeBuildParts(ok, stats, extras).join("; ");
}

/** The outcome in parts: counts and wall time, then what was moved, then time saved (when any). */
export function summarizeBuildParts(ok: boolean, stats: BuildStats, extras: SummaryExtras): string[] {
  const counts = [`${stats.built} built`, `${stats.pulled} pulled`, `${stats.cached} cached`];
  if (stats.failed > 0) counts.push(`${stats.failed} ${extras.interrupted ? "stopped" : "failed"}`);
  if (extras.skipped > 0) counts.push(`${extras.skipped} skipped`);
  const outcome = extras.interrupted ? "interrupted" : ok ? "done" : "failed";
  const parts = [`${outcome}: ${plural(stats.layers, "layer")} (${counts.join(", ")}) in ${formatDuration(stats.wallMs)}`];
  const transfers: string[] = [];
  if (extras.sources > 0) {
    transfers.push(`fetched ${plural(extras.sources, "source")}${extras.sourceBytes > 0 ? ` (${formatBytes(extras.sourceBytes)})` : ""}`);
  }
  if (stats.pulledBytes > 0) transfers.push(`pulled ${formatBytes(stats.pulledBytes)}`);
  if (stats.pushedBytes > 0) transfers.push(`pushed ${formatBytes(stats.pushedBytes)}`);
  if (transfers.length > 0) parts.push(transfers.join(", "));
  if (extras.savedMs !== undefined && extras.savedMs >= 1000) parts.push(`the cache saved about ${formatDuration(extras.savedMs)} of building`);
  return parts;
}

/** "1 layer", "12 layers". */
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
