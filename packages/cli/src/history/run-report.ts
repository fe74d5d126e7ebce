// Owns saying in words what a recorded run did to each layer, for `castle why --run`: built and
// why (the inputs that changed), imported, pulled, found in the cache, failed or skipped and why,
// in the order the layers were declared.

import { describeReason, formatBytes, formatDuration } from "../ui/format";
import { ago } from "./select-run";
import type { LayerTimeline, RunTimeline } from "./timeline";

export function runReport(timeline: RunTimeline, now = Date.now()): string[] {
  const { header } = timeline;
  const when = new Date(header.startedAt).toISOString().replace("T", " ").slice(0, 19);
  const outcome = timeline.result ? `${timeline.result.ok ? "succeeded" : "failed"} in ${formatDuration(timeline.endedAt)}` : "did not finish";
  const lines = [`run ${header.id} of ${header.system}: castle ${header.command}, ${when} UTC (${ago(header.startedAt, now)}), ${outcome}`];
  for (const layer of timeline.layers) lines.push(`  ${layer.name}: ${layerLine(layer)}`);
  for (const warning of timeline.warnings) lines.push(`  warning: ${warning}`);
  if (timeline.criticalPath.length > 1) lines.push(`  critical path: ${timeline.criticalPath.join(" → ")}`);
  return lines;
}

function layerLine(layer: LayerTimeline): string {
  const took = layer.workFrom !== undefined && layer.endedAt !== undefined ? formatDuration(layer.endedAt - layer.workFrom) : undefined;
  switch (layer.outcome) {
    case "built":
      return `built${took ? ` in ${took}` : ""} — ${layer.reason ? explain(layer) : "no reason recorded"}`;
    case "imported":
      return `imported${took ? ` in ${took}` : ""} (its source was fetched)`;
    case "pulled":
      return `pulled from the remote cache${layer.bytes ? ` (${formatBytes(layer.bytes)}${took ? ` in ${took}` : ""})` : ""}`;
    case "cached":
      return `cached${layer.key ? ` (key ${layer.key.slice(0, 12)})` : ""}: its inputs were the same as a stored build's`;
    case "merged":
      return "merged from its layers";
    case "failed":
      return `failed${took ? ` after ${took}` : ""}: ${firstLine(layer.message)}${layer.logPath ? ` (log: ${layer.logPath})` : ""}`;
    case "skipped":
      return `skipped: ${layer.message ?? "the build stopped"}`;
    default:
      return "did not finish";
  }
}

function explain(layer: LayerTimeline): string {
  const reason = layer.reason!;
  if (reason.kind === "new") return "never built before under this name";
  if (reason.kind === "forced") return "asked to rebuild (--rebuild)";
  return reason.changes.length <= 3 ? reason.changes.join("; ") : describeReason(reason, 3);
}

function firstLine(text: string | undefined): string {
  return (text ?? "").split("\n")[0] ?? "";
}
