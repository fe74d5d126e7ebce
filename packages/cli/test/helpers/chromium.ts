// Test helper: loads a page in headless Chromium (Debian's `chromium`), with a fresh profile and
// none of its background network, and returns the DOM after it was laid out, or a screenshot
// decoded to pixels (a small PNG reader: 8-bit RGB/RGBA, not interlaced, which is what Chromium
// writes). Skips with a reason when chromium is not installed.

import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inflateSync } from "node:zlib";

const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
  "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--force-device-scale-factor=1",
];

/** Why pages cannot be loaded here, or undefined. */
export function chromiumMissing(): string | undefined {
  try {
    execFileSync("chromium", ["--version"], { stdio: "ignore", timeout: 30_000 });
    return undefined;
  } catch {
    return "chromium is not installed (apt-get install chromium)";
  }
}

function withProfile<T>(run: (profile: string) => T): T {
  const profile = mkdtempSync(join(tmpdir(), "castle-chromium-"));
  try {
    return run(profile);
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

/** The page's DOM, serialized after it loaded. */
export function dumpDom(file: string): string {
  return withProfile((profile) => {
    const result = spawnSync("chromium", [...FLAGS, `--user-data-dir=${profile}`, "--dump-dom", `file://${file}`], {
      encoding: "utf8", timeout: 60_000, maxBuffer: 64 << 20,
    });
    if (result.status !== 0) throw new Error(`chromium --dump-dom failed (${result.status}): ${result.stderr}`);
    return result.stdout;
  });
}

export interface Picture {
  width: number;
  height: number;
  /** [r, g, b] at a pixel. */
  at(x: number, y: number): [number, number, number];
}

/** A screenshot of the page in a window of width × height. */
export function screenshot(file: string, width: number, height: number): Picture {
  return withProfile((profile) => {
    const png = join(profile, "shot.png");
    const result = spawnSync("chromium", [...FLAGS, `--user-data-dir=${profile}`, `--window-size=${width},${height}`, `--screenshot=${png}`, `file://${file}`], {
      encoding: "utf8", timeout: 60_000,
    });
    if (result.status !== 0) throw new Error(`chromium --screenshot failed (${result.status}): ${result.stderr}`);
    return decodePng(readFileSync(png));
  });
}

/** Decodes an 8-bit, non-interlaced RGB or RGBA PNG. */
export function decodePng(png: Buffer): Picture {
  if (png.readUInt32BE(0) !== 0x89504e47) throw new Error("not a PNG");
  let at = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const data: Buffer[] = [];
  while (at < png.length) {
    const length = png.readUInt32BE(at);
    const type = png.toString("latin1", at + 4, at + 8);
    const body = png.subarray(at + 8, at + 8 + length);
    if (type === "IHDR") {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      const [depth, colour, , , interlace] = [body[8], body[9], body[10], body[11], body[12]];
      if (depth !== 8 || interlace !== 0 || (colour !== 2 && colour !== 6)) throw new Error(`unsupported PNG (depth ${depth}, colour ${colour})`);
      channels = colour === 6 ? 4 : 3;
    } else if (type === "IDAT") data.push(body);
    at += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(data));
  const stride = width * channels;
  const pixels = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const left = x >= channels ? pixels[y * stride + x - channels]! : 0;
      const up = y > 0 ? pixels[(y - 1) * stride + x]! : 0;
      const upLeft = y > 0 && x >= channels ? pixels[(y - 1) * stride + x - channels]! : 0;
      let value = line[x]!;
      if (filter === 1) value += left;
      else if (filter === 2) value += up;
      else if (filter === 3) value += (left + up) >> 1;
      else if (filter === 4) {
        const p = left + up - upLeft;
        const [pa, pb, pc] = [Math.abs(p - left), Math.abs(p - up), Math.abs(p - upLeft)];
        value += pa <= pb && pa <= pc ? left : pb <= pc ? up : upLeft;
      }
      pixels[y * stride + x] = value & 0xff;
    }
  }
  return {
    width,
    height,
    at: (x, y) => {
      const i = y * stride + x * channels;
      return [pixels[i]!, pixels[i + 1]!, pixels[i + 2]!];
    },
  };
}
