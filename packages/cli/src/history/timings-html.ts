// Owns the timings page of a run (cargo's --timings is the model): one self-contained HTML file,
// no script, no network — a timeline with a row per layer (waiting for its dependencies, waiting
// for a build slot, fetching its source, pulling, building), the sources' downloads, the
// critical path marked, the cores in use over time beside the build slots in use, and a table.
// Drawn as SVG here, in typed code; hovering a bar shows its numbers (SVG <title>).

import { formatBytes, formatDuration } from "../ui/format";
import type { LayerTimeline, RunTimeline } from "./timeline";

export const COLOURS = {
  build: "#e8833a",
  pull: "#4a90d9",
  fetch: "#2aa198",
  slot: "#f2d675",
  deps: "#bbbbbb",
  failed: "#d33c3c",
  critical: "#b00020",
  cores: "#6c3fb5",
  slots: "#e8833a",
} as const;

const WIDTH = 960;
const LABEL = 170;
const ROW = 20;
const CHART = 140;

export function timingsHtml(timeline: RunTimeline): string {
  const { header } = timeline;
  const span = Math.max(1, timeline.endedAt);
  const x = (t: number) => LABEL + (Math.max(0, t) / span) * (WIDTH - LABEL - 10);
  const rows = timeline.layers.filter((l) => l.workFrom !== undefined || l.outcome === "failed").sort((a, b) => (a.workFrom ?? a.endedAt ?? 0) - (b.workFrom ?? b.endedAt ?? 0));
  const critical = new Set(timeline.criticalPath);
  const title = `${header.system}: castle ${header.command}, ${new Date(header.startedAt).toISOString().replace("T", " ").slice(0, 19)} UTC`;
  const counts = countOutcomes(timeline.layers);
  const outcome = timeline.result ? (timeline.result.ok ? "succeeded" : "failed") : "did not finish";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>
body { font: 13px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 18px; margin: 0 0 4px; } h2 { font-size: 15px; margin: 24px 0 6px; }
.legend span { display: inline-block; margin-right: 14px; } .legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -2px; }
table { border-collapse: collapse; margin-top: 8px; } td, th { padding: 2px 10px 2px 0; text-align: left; vertical-align: top; }
th { border-bottom: 1px solid #ccc; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.critical { color: ${COLOURS.critical}; font-weight: 600; }
svg text { font: 11px system-ui, sans-serif; }
</style></head>
<body>
<h1>${escape(title)}</h1>
<p id="summary">The run ${outcome} after ${formatDuration(timeline.endedAt)} on ${header.cores} cores, ${timeline.jobs ?? "?"} build slots: ${escape(counts)}.
Definition: ${escape(header.definition)}.</p>
<p id="critical-path">Critical path: <span class="critical">${timeline.criticalPath.map(escape).join(" → ") || "none (nothing was built)"}</span></p>
<p class="legend">${legend()}</p>
<h2>Layers</h2>
${ganttSvg(rows, timeline, x, critical)}
${timeline.sources.length > 0 ? `<h2>Sources</h2>\n${sourcesSvg(timeline, x)}` : ""}
<h2>Cores in use</h2>
${coresSvg(timeline, x)}
<h2>Every layer</h2>
${layerTable(timeline, critical)}
</body></html>
`;
}

function legend(): string {
  const items: [string, string][] = [
    [COLOURS.deps, "waiting for its dependencies"], [COLOURS.slot, "waiting for a build slot"], [COLOURS.fetch, "fetching its source"],
    [COLOURS.pull, "pulling"], [COLOURS.build, "building"], [COLOURS.failed, "failed"], [COLOURS.critical, "critical path (outlined)"],
  ];
  return items.map(([colour, text]) => `<span><i style="background:${colour}"></i>${text}</span>`).join("");
}

function ganttSvg(rows: LayerTimeline[], timeline: RunTimeline, x: (t: number) => number, critical: Set<string>): string {
  const height = rows.length * ROW + 24;
  const parts = [`<svg id="layers" xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}">`, axis(timeline.endedAt, x, height - 18)];
  rows.forEach((layer, i) => {
    const y = i * ROW + 2;
    const isCritical = critical.has(layer.name);
    parts.push(`<g class="layer" data-layer="${escape(layer.name)}" data-outcome="${layer.outcome}"${isCritical ? ' data-critical="true"' : ""}>`);
    parts.push(`<text x="4" y="${y + 13}"${isCritical ? ` fill="${COLOURS.critical}" font-weight="bold"` : ""}>${escape(clip(layer.name, 24))}</text>`);
    const workFrom = layer.workFrom ?? layer.endedAt ?? 0;
    const waitStart = layer.depsReadyAt ?? 0;
    const slotFrom = layer.slotWaitFrom ?? workFrom;
    if (workFrom > 0) parts.push(line(x(0), x(Math.min(waitStart, workFrom)), y + 8, COLOURS.deps, "waiting for its dependencies", 0, Math.min(waitStart, workFrom)));
    if (slotFrom < workFrom) parts.push(bar("slot", x(slotFrom), x(workFrom), y, COLOURS.slot, `${layer.name}: waited ${formatDuration(workFrom - slotFrom)} for a build slot`));
    const end = layer.endedAt ?? timeline.endedAt;
    const kind = layer.outcome === "failed" ? "failed" : layer.outcome === "pulled" ? "pull" : layer.outcome === "imported" ? "fetch" : "build";
    const colour = { failed: COLOURS.failed, pull: COLOURS.pull, fetch: COLOURS.fetch, build: COLOURS.build }[kind];
    parts.push(bar(kind, x(workFrom), x(end), y, colour, workTitle(layer, workFrom, end), isCritical));
    parts.push("</g>");
  });
  parts.push("</svg>");
  return parts.join("\n");
}

/** Sources shown as rows: the slowest ones; the rest are counted in a line below. */
const SOURCE_ROWS = 20;

function sourcesSvg(timeline: RunTimeline, x: (t: number) => number): string {
  const took = (s: { startedAt: number; endedAt: number | undefined }) => (s.endedAt ?? timeline.endedAt) - s.startedAt;
  const slowest = [...timeline.sources].sort((a, b) => took(b) - took(a)).slice(0, SOURCE_ROWS);
  const sources = slowest.sort((a, b) => a.startedAt - b.startedAt);
  const rest = timeline.sources.length - sources.length;
  const height = sources.length * 16 + 24;
  const parts = [`<svg id="sources" xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}">`, axis(timeline.endedAt, x, height - 18)];
  sources.forEach((source, i) => {
    const end = source.endedAt ?? timeline.endedAt;
    const y = i * 16 + 2;
    const what = `${source.name}: ${source.fetchedBytes > 0 ? `fetched ${formatBytes(source.fetchedBytes)} in ` : ""}${formatDuration(end - source.startedAt)}`;
    parts.push(`<text x="4" y="${y + 10}">${escape(clip(source.name, 26))}</text>`);
    parts.push(`<rect class="source" data-source="${escape(source.name)}" x="${x(source.startedAt).toFixed(1)}" y="${y}" width="${Math.max(1, x(end) - x(source.startedAt)).toFixed(1)}" height="11" fill="${COLOURS.fetch}"><title>${escape(what)}</title></rect>`);
  });
  parts.push("</svg>");
  if (rest > 0) {
    const longest = Math.max(0, ...timeline.sources.filter((s) => !sources.includes(s)).map(took));
    parts.push(`<p id="more-sources">and ${rest} more ${rest === 1 ? "source" : "sources"}, each ready in ${formatDuration(longest)} or less</p>`);
  }
  return parts.join("\n");
}

/** Busy cores from the CPU samples, and build slots in use (builds running) over time. */
function coresSvg(timeline: RunTimeline, x: (t: number) => number): string {
  const cores = Math.max(1, timeline.header.cores);
  const top = 10;
  const y = (value: number) => top + CHART - (Math.min(value, cores) / cores) * CHART;
  const parts = [`<svg id="cores" xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${CHART + 40}" viewBox="0 0 ${WIDTH} ${CHART + 40}">`];
  parts.push(`<line x1="${LABEL}" x2="${WIDTH - 10}" y1="${y(cores)}" y2="${y(cores)}" stroke="#999" stroke-dasharray="4 3"/>`);
  parts.push(`<text x="4" y="${y(cores) + 4}">${cores} cores</text><text x="4" y="${y(0)}">0</text>`);
  const samples = [{ t: 0, busy: 0 }, ...timeline.cpu];
  const points = samples.map((s) => `${x(s.t).toFixed(1)},${y(s.busy).toFixed(1)}`).join(" ");
  parts.push(`<polyline id="cpu" points="${points}" fill="none" stroke="${COLOURS.cores}" stroke-width="2"><title>cores busy (all processes), sampled every half second</title></polyline>`);
  const steps = slotSteps(timeline);
  const stepPoints = steps.map((s) => `${x(s.t).toFixed(1)},${y(s.running).toFixed(1)}`).join(" ");
  parts.push(`<polyline id="slots" points="${stepPoints}" fill="none" stroke="${COLOURS.slots}" stroke-width="1.5" stroke-dasharray="5 2"><title>builds running</title></polyline>`);
  parts.push(axis(timeline.endedAt, x, CHART + 22));
  parts.push("</svg>");
  parts.push(`<p class="legend"><span><i style="background:${COLOURS.cores}"></i>cores busy</span><span><i style="background:${COLOURS.slots}"></i>builds running</span></p>`);
  return parts.join("\n");
}

/** The number of builds running, as a step line over the run. */
function slotSteps(timeline: RunTimeline): { t: number; running: number }[] {
  const changes: { t: number; delta: number }[] = [];
  for (const layer of timeline.layers) {
    if (layer.reason === undefined || layer.workFrom === undefined) continue;
    changes.push({ t: layer.workFrom, delta: 1 }, { t: layer.endedAt ?? timeline.endedAt, delta: -1 });
  }
  changes.sort((a, b) => a.t - b.t || a.delta - b.delta);
  const steps = [{ t: 0, running: 0 }];
  let running = 0;
  for (const change of changes) {
    steps.push({ t: change.t, running });
    running += change.delta;
    steps.push({ t: change.t, running });
  }
  steps.push({ t: timeline.endedAt, running });
  return steps;
}

function layerTable(timeline: RunTimeline, critical: Set<string>): string {
  const rows = timeline.layers.map((l) => {
    const took = l.workFrom !== undefined && l.endedAt !== undefined ? formatDuration(l.endedAt - l.workFrom) : "";
    const slot = l.slotWaitFrom !== undefined && l.workFrom !== undefined ? formatDuration(l.workFrom - l.slotWaitFrom) : "";
    const why = l.outcome === "failed" || l.outcome === "skipped" ? l.message ?? "" : (l.reason?.changes ?? []).join("; ");
    const name = critical.has(l.name) ? `<span class="critical">${escape(l.name)}</span>` : escape(l.name);
    return `<tr data-layer="${escape(l.name)}"><td>${name}</td><td>${l.outcome}</td><td class="num">${took}</td><td class="num">${slot}</td><td>${escape(why)}</td></tr>`;
  });
  return `<table id="table"><tr><th>layer</th><th>outcome</th><th>took</th><th>waited for a slot</th><th>why</th></tr>\n${rows.join("\n")}\n</table>`;
}

function workTitle(layer: LayerTimeline, from: number, to: number): string {
  const took = formatDuration(to - from);
  switch (layer.outcome) {
    case "pulled":
      return `${layer.name}: pulled${layer.bytes ? ` ${formatBytes(layer.bytes)}` : ""} in ${took}`;
    case "imported":
      return `${layer.name}: fetched its source in ${took}`;
    case "failed":
      return `${layer.name}: failed after ${took}: ${layer.message ?? ""}`;
    default:
      return `${layer.name}: built in ${took}${layer.jobs ? ` (-j${layer.jobs})` : ""}${layer.expectedMs ? `, last time ${formatDuration(layer.expectedMs)}` : ""}`;
  }
}

function bar(kind: string, x1: number, x2: number, y: number, fill: string, title: string, outlined = false): string {
  const stroke = outlined ? ` stroke="${COLOURS.critical}" stroke-width="2"` : "";
  return `<rect class="${kind}" x="${x1.toFixed(1)}" y="${y + 1}" width="${Math.max(1, x2 - x1).toFixed(1)}" height="${ROW - 6}" fill="${fill}"${stroke}><title>${escape(title)}</title></rect>`;
}

function line(x1: number, x2: number, y: number, colour: string, what: string, from: number, to: number): string {
  if (x2 <= x1) return "";
  return `<line class="deps" x1="${x1.toFixed(1)}" x2="${x2.toFixed(1)}" y1="${y}" y2="${y}" stroke="${colour}" stroke-width="2"><title>${escape(`${what}: ${formatDuration(to - from)}`)}</title></line>`;
}

/** Ticks along the bottom: about ten, at round seconds. */
function axis(span: number, x: (t: number) => number, y: number): string {
  const seconds = span / 1000;
  const step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600].find((s) => seconds / s <= 10) ?? 1200;
  const ticks: string[] = [];
  for (let s = 0; s <= seconds; s += step) {
    ticks.push(`<line x1="${x(s * 1000)}" x2="${x(s * 1000)}" y1="0" y2="${y}" stroke="#eee"/><text x="${x(s * 1000) - 6}" y="${y + 12}" fill="#666">${formatDuration(s * 1000)}</text>`);
  }
  return `<g class="axis">${ticks.join("")}</g>`;
}

function countOutcomes(layers: readonly LayerTimeline[]): string {
  const counts = new Map<string, number>();
  for (const l of layers) counts.set(l.outcome, (counts.get(l.outcome) ?? 0) + 1);
  return [...counts].map(([outcome, n]) => `${n} ${outcome}`).join(", ") || "no layers";
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
