// Benchmark: examples/distro built cold by Castle (toolchain from the locked .debs, then musl,
// musl-dev, busybox, zlib, dropbear, xz, bzip2, lua in parallel layers) against a plain
// sequential shell script building the same set in the same toolchain tree (bench/distro/
// plain-build.sh: dpkg-deb, then unshare + chroot). Both read the same files from a local
// directory (downloaded once, not timed). Also: `castle run` of the built system with everything
// cached, against entering the plain tree with unshare + chroot.
// Run: npx tsx bench/distro-build.ts   (exports main() for bench/run.ts; ~5 min on 2 cores)

import { rmSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import lock from "../examples/distro/bootstrap/debs.lock.json";
import { BENCH_DIR, DISTRO, castle, castleEnv, distroBenchProblem, outcomes, plainBuild, prepareFiles, run } from "./distro/common";
import { median, printRows, row, type BenchRow } from "./lib/rows";

const ROUNDS = Number(process.env.CASTLE_BENCH_RUNS ?? 1);
const WARM_RUNS = 7;

export async function main(): Promise<BenchRow[]> {
  const problem = await distroBenchProblem();
  if (problem) {
    console.warn(`distro-build: skipped: ${problem}`);
    return [];
  }
  const { mirror, files } = await prepareFiles();
  const castleCold: number[] = [];
  const plainCold: number[] = [];
  let castleDir = "";
  let plainWork = "";
  for (let round = 0; round < ROUNDS; round++) {
    // Castle first in even rounds, the script first in odd ones.
    const sides = [
      async () => {
        castleDir = join(BENCH_DIR, "castle");
        rmSync(castleDir, { recursive: true, force: true });
        const built = await castle(["build", DISTRO, "--plain"], castleEnv(castleDir, mirror));
        const made = outcomes(built.stderr).built ?? [];
        if (made.length !== 17) throw new Error(`expected 17 layers built (9 in the system, musl-dev, 7 sources), got ${made.join(", ")}`);
        console.log(`distro-build: castle cold build ${(built.ms / 1000).toFixed(1)} s: ${built.stderr.match(/^done: .*$/m)?.[0]}`);
        castleCold.push(built.ms);
      },
      async () => {
        plainWork = join(BENCH_DIR, "plain");
        const plain = await plainBuild(plainWork, files);
        console.log(`distro-build: plain script ${(plain.ms / 1000).toFixed(1)} s (${plain.phases})`);
        plainCold.push(plain.ms);
      },
    ];
    if (round % 2 === 1) sides.reverse();
    for (const side of sides) await side();
  }

  // Everything cached: from the command to the system's /bin/true having run, and back.
  const env = castleEnv(castleDir, mirror);
  await castle(["run", DISTRO, "--", "/bin/true"], env);
  const warm: number[] = [];
  const enter: number[] = [];
  for (let i = 0; i < WARM_RUNS; i++) {
    warm.push((await castle(["run", DISTRO, "--", "/bin/true"], env)).ms);
    const plain = await run("unshare", ["-Urmpf", "chroot", join(plainWork, "root"), "/bin/true"]);
    if (plain.code !== 0) throw new Error(`unshare + chroot failed: ${plain.stderr}`);
    enter.push(plain.ms);
  }
  return [
    row(
      `distro cold build: toolchain from ${lock.packages.length} .debs + musl, busybox, zlib, dropbear, xz, bzip2, lua (2 cores, files local)`,
      median(castleCold), median(plainCold), "plain sequential script (dpkg-deb, unshare -Urmpf + chroot, make -j2)",
    ),
    row("castle run of the built distro, everything cached (`-- /bin/true`)", median(warm), median(enter), "unshare -Urmpf + chroot into the plain tree, /bin/true"),
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().then(printRows, (error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
