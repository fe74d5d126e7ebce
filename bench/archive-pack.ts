// Benchmark: Castle's pack + unpack of a large real tree against GNU tar piped through the same
// zstd (`tar -c | zstd -3 -T1`, `zstd -d | tar -x`), interleaved run by run so machine noise
// hits both sides alike. Castle packs with zstd -T0 (a compression thread per core, same bytes),
// so packing is also compared with `tar -c | zstd -3 -T0`, the same thread count. The tree is a copy of /usr/include and /usr/bin (a few hundred MB, ~10k
// entries), made once under $CASTLE_BENCH_DIR (default /tmp/castle-bench); blobs and unpacked
// trees go to /dev/shm when it exists, so the disk's writeback does not decide the result.
// Run: npx tsx bench/archive-pack.ts   (exports main() for bench/run.ts)

import { execFileSync, spawnSync } from "node:child_process";
import { createReadStream, existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { digestTree, packTreeToFile, unpackTree } from "../packages/cache/src/index";
import { type BenchRow, median, row } from "./lib/rows";

const RUNS = Number(process.env.CASTLE_BENCH_RUNS ?? 5);
const SOURCES = ["/usr/include", "/usr/bin"];
const GNU = "GNU tar + zstd";

/** The bench tree, copied once from this machine's /usr. */
export function benchTree(): string {
  const base = process.env.CASTLE_BENCH_DIR ?? "/tmp/castle-bench";
  const tree = join(base, "usr-tree");
  if (!existsSync(join(tree, ".complete"))) {
    rmSync(tree, { recursive: true, force: true });
    mkdirSync(join(tree, "usr"), { recursive: true });
    for (const source of SOURCES) execFileSync("cp", ["-a", source, join(tree, "usr")]);
    execFileSync("touch", [join(tree, ".complete")]);
  }
  return tree;
}

function scratch(): string {
  const dir = join(existsSync("/dev/shm") ? "/dev/shm" : "/tmp", `castle-bench-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

function sh(script: string): void {
  const result = spawnSync("sh", ["-c", script], { stdio: ["ignore", "ignore", "inherit"] });
  if (result.status !== 0) throw new Error(`failed: ${script}`);
}

export async function main(): Promise<BenchRow[]> {
  const tree = benchTree();
  const work = scratch();
  const blob = join(work, "castle.tar.zst");
  const gnuBlob = join(work, "gnu.tar.zst");
  const out = join(work, "out");
  const times = { castlePack: [] as number[], castleUnpack: [] as number[], gnuPack: [] as number[], gnuPackT0: [] as number[], gnuUnpack: [] as number[] };
  const mb = Number(execFileSync("du", ["-sb", tree]).toString().split("\t")[0]) / 1e6;
  try {
    const castleRun = async (run: number) => {
      let t = performance.now();
      const packed = await packTreeToFile(tree, blob);
      times.castlePack.push(performance.now() - t);
      rmSync(out, { recursive: true, force: true });
      mkdirSync(out);
      t = performance.now();
      await unpackTree(createReadStream(blob, { highWaterMark: 1 << 20 }), out, { expectBlobDigest: packed.digest });
      times.castleUnpack.push(performance.now() - t);
      if (run === 0 && digestTree(out).digest !== digestTree(tree).digest) throw new Error("unpacked tree differs");
      rmSync(out, { recursive: true, force: true });
    };
    const gnuRun = () => {
      let t = performance.now();
      sh(`tar -C '${tree}' -cf - . | zstd -3 -T1 -q -c > '${gnuBlob}'`);
      times.gnuPack.push(performance.now() - t);
      t = performance.now();
      sh(`tar -C '${tree}' -cf - . | zstd -3 -T0 -q -c > '${gnuBlob}.t0'`);
      times.gnuPackT0.push(performance.now() - t);
      rmSync(out, { recursive: true, force: true });
      mkdirSync(out);
      t = performance.now();
      sh(`zstd -d -q -c < '${gnuBlob}' | tar -C '${out}' -xf -`);
      times.gnuUnpack.push(performance.now() - t);
      rmSync(out, { recursive: true, force: true });
    };
    for (let run = 0; run < RUNS; run++) {
      // Alternate which side goes first, so neither always inherits the other's page-cache state.
      if (run % 2 === 0) {
        await castleRun(run);
        gnuRun();
      } else {
        gnuRun();
        await castleRun(run);
      }
    }
    for (const [side, values] of Object.entries(times)) console.log(`${side}: ${values.map((v) => v.toFixed(0)).join(" ")} ms`);
    const sizes = `castle ${(statSync(blob).size / 1e6).toFixed(1)} MB, GNU ${(statSync(gnuBlob).size / 1e6).toFixed(1)} MB`;
    const rows: BenchRow[] = [
      row(`pack ${mb.toFixed(0)} MB tree (zstd -3; ${sizes})`, median(times.castlePack), median(times.gnuPack), GNU),
      row(`pack ${mb.toFixed(0)} MB tree, both with zstd -T0`, median(times.castlePack), median(times.gnuPackT0), "GNU tar + zstd -T0"),
      row(`unpack ${mb.toFixed(0)} MB tree (zstd -d)`, median(times.castleUnpack), median(times.gnuUnpack), GNU),
      row("pack + unpack", median(times.castlePack) + median(times.castleUnpack), median(times.gnuPack) + median(times.gnuUnpack), GNU),
    ];
    for (const r of [rows[0], rows[2]] as BenchRow[]) {
      console.log(`${r.name}: castle ${(mb / (r.castleMs / 1000)).toFixed(0)} MB/s, GNU ${(mb / (r.peerMs / 1000)).toFixed(0)} MB/s`);
    }
    return rows;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Prints rows as a markdown table. */
export function printTable(rows: BenchRow[]): void {
  console.log("| case | castle ms | peer | peer ms | castle/peer (lower is better) |");
  console.log("|---|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.name} | ${r.castleMs} | ${r.peer} | ${r.peerMs} | ${r.ratio.toFixed(2)} |`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().then(printTable, (error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
