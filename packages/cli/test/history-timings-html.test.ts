// Tests the timings page (cli/src/history/timings-html.ts) by loading it in headless Chromium:
// the DOM it lays out (a row per layer that worked, with its kind of work, the critical path
// marked, the sources, the cores chart, the table) and a screenshot, in which the longest build's
// bar is drawn in the build colour at the width its time gives. Skips with a reason when
// chromium is missing.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { timelineOf } from "../src/history/timeline";
import { COLOURS, timingsHtml } from "../src/history/timings-html";
import { chromiumMissing, dumpDom, screenshot } from "./helpers/chromium";
import { recordedRun } from "./helpers/history-run";

const missing = chromiumMissing();
if (missing) console.warn(`skipping the timings page tests in Chromium: ${missing}`);

const dir = mkdtempSync(join(tmpdir(), "castle-timings-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(missing)("the timings page in Chromium", () => {
  const page = join(dir, "timings.html");
  writeFileSync(page, timingsHtml(timelineOf(recordedRun(join(dir, "run.jsonl")))));

  it("lays out a row per layer that worked, the critical path, the sources, the cores and a table", () => {
    const dom = dumpDom(page);
    const rows = [...dom.matchAll(/<g class="layer" data-layer="(\w+)" data-outcome="(\w+)"( data-critical="true")?>/g)].map((m) => [m[1], m[2], Boolean(m[3])]);
    expect(rows).toEqual([["src", "imported", true], ["a", "built", true], ["b", "built", false], ["c", "built", true]]);
    expect(dom).toContain('Critical path: <span class="critical">src → a → c</span>');
    expect(dom).toMatch(/<rect class="slot"[^>]*><title>c: waited 0\.5s for a build slot<\/title>/);
    expect(dom).toMatch(/<rect class="fetch"[^>]*><title>src: fetched its source in 1\.0s<\/title>/);
    expect(dom).toMatch(/<rect class="build"[^>]*><title>a: built in 3\.0s \(-j2\), last time 2\.5s<\/title>/);
    expect(dom).toMatch(/<rect class="source" data-source="src-files"[^>]*><title>src-files: fetched 5\.0 MB in 0\.9s<\/title>/);
    const cpu = /<polyline id="cpu" points="([^"]+)"/.exec(dom)?.[1]?.split(" ");
    expect(cpu).toHaveLength(13); // the origin and 12 samples
    expect(dom).toMatch(/<tr data-layer="old"><td>old<\/td><td>cached<\/td>/);
    expect(dom).toContain("The run succeeded after 6.0s on 2 cores, 2 build slots");
  }, 120_000);

  it("draws the longest build in the build colour, as wide as its share of the run", () => {
    const picture = screenshot(page, 1100, 900);
    const build = hex(COLOURS.build);
    // The longest horizontal run of build-coloured pixels is a's bar: 3 s of 6 s over the plot's width.
    let longest = 0;
    for (let y = 0; y < picture.height; y++) {
      let run = 0;
      for (let x = 0; x < picture.width; x++) {
        run = same(picture.at(x, y), build) ? run + 1 : 0;
        longest = Math.max(longest, run);
      }
    }
    const plot = 960 - 170 - 10;
    expect(Math.abs(longest - (plot * 3) / 6)).toBeLessThanOrEqual(4);
    // The cores line and the critical path's outline are drawn too.
    expect(count(picture, hex(COLOURS.cores))).toBeGreaterThan(100);
    expect(count(picture, hex(COLOURS.critical))).toBeGreaterThan(100);
  }, 120_000);
});

function hex(colour: string): [number, number, number] {
  return [1, 3, 5].map((i) => parseInt(colour.slice(i, i + 2), 16)) as [number, number, number];
}

function same(a: [number, number, number], b: [number, number, number]): boolean {
  return a.every((v, i) => Math.abs(v - b[i]!) <= 2);
}

function count(picture: ReturnType<typeof screenshot>, colour: [number, number, number]): number {
  let n = 0;
  for (let y = 0; y < picture.height; y++) for (let x = 0; x < picture.width; x++) if (same(picture.at(x, y), colour)) n++;
  return n;
}

describe("the timings page of a run with many sources", () => {
  it("draws the slowest twenty, and counts the rest", () => {
    const run = recordedRun();
    for (let i = 0; i < 25; i++) {
      run.lines.push({ t: 100, event: { type: "source", source: `deb-${i}`, phase: "download", bytesDone: 0, bytesTotal: 10 } });
      run.lines.push({ t: 100 + 10 * i, event: { type: "source", source: `deb-${i}`, phase: "done", bytesDone: 10, bytesTotal: 10 } });
    }
    run.lines.sort((a, b) => a.t - b.t);
    const html = timingsHtml(timelineOf(run));
    expect(html.match(/<rect class="source"/g)).toHaveLength(20);
    expect(html).toContain('data-source="deb-24"');
    expect(html).not.toContain('data-source="deb-0"');
    expect(html).toContain("and 6 more sources, each ready in 0.1s or less");
  });
});
