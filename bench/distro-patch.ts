// Benchmark: the README's libc patch to a running system. One file of musl changes (_Exit.c:
// every exit prints RIP <status>); Castle rebuilds musl (incrementally, from its object cache)
// and musl-dev (to the same bytes: early cutoff), takes everything else from its store, and runs
// `sh -c 'exit 3'` in the system. The peer does the same by hand in the plain script's tree: make
// and make install in musl's kept build dir, then the command (unshare + chroot). Each round uses
// a new variant of the patch (another constant in _Exit's code), so every round really rebuilds.
// Builds the distro first (both ways) when the bench dir does not have it; that is not timed.
// Run: npx tsx bench/distro-patch.ts   (exports main() for bench/run.ts)

import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import {
  BENCH_DIR, DISTRO, RIP_EXIT_C, castle, castleEnv, distroBenchProblem, outcomes, plainBuild, prepareFiles, run,
} from "./distro/common";
import { median, printRows, row, type BenchRow } from "./lib/rows";

const ROUNDS = Number(process.env.CASTLE_BENCH_RUNS ?? 3);
const TARGET_MS = 5000;

export async function main(): Promise<BenchRow[]> {
  const problem = await distroBenchProblem();
  if (problem) {
    console.warn(`distro-patch: skipped: ${problem}`);
    return [];
  }
  const { mirror, files } = await prepareFiles();
  const env = castleEnv(join(BENCH_DIR, "castle"), mirror);
  await castle(["build", DISTRO, "--plain"], env);
  const plainRoot = join(BENCH_DIR, "plain", "root");
  if (!existsSync(join(plainRoot, "build/musl/obj/lib/libc.so")) || !existsSync(join(plainRoot, "usr/bin/busybox"))) {
    await plainBuild(join(BENCH_DIR, "plain"), files);
  }
  const muslDir = join(BENCH_DIR, "musl-src");
  rmSync(muslDir, { recursive: true, force: true });
  await castle(["source", DISTRO, "--name", "musl-src", "--out", muslDir], env);

  const castleMs: number[] = [];
  const peerMs: number[] = [];
  const stamp = Date.now();
  for (let round = 0; round < ROUNDS; round++) {
    // A different constant in _Exit's code each round (no new symbol: the ABI stays the same).
    const patch = RIP_EXIT_C.replace("_Exit(int ec)\n{\n", `_Exit(int ec)\n{\n\tif (ec == ${1000 + ((stamp + round) % 100000)}) __syscall(SYS_getpid);\n`);
    if (patch === RIP_EXIT_C) throw new Error("patches/rip-exit.c no longer has the expected _Exit opening");
    writeFileSync(join(muslDir, "src/exit/_Exit.c"), patch);
    const patched = await castle(["run", DISTRO, "--plain", "--", "sh", "-c", "exit 3"], { ...env, CASTLE_OVERRIDE_musl_src: muslDir }, 3);
    const seen = outcomes(patched.stderr);
    if (!/^RIP 3$/m.test(patched.stderr) || (seen.built ?? []).sort().join(" ") !== "musl musl-dev musl-source") {
      throw new Error(`the patched run did not rebuild exactly musl, musl-dev and musl-source and print RIP 3:\n${patched.stderr}`);
    }
    castleMs.push(patched.ms);

    writeFileSync(join(plainRoot, "build/musl/src/exit/_Exit.c"), patch);
    const plain = await run("unshare", [
      "-Urmpf", "sh", "-c",
      'mount --rbind /dev "$1/dev" && mount -t proc proc "$1/proc" && exec chroot "$1" /usr/bin/env MAKEFLAGS=-j2 /bin/sh -c ' +
        `'cd /build/musl/obj && make > /dev/null && make install > /dev/null && exec sh -c "exit 3"'`,
      "plain", plainRoot,
    ]);
    if (plain.code !== 3 || !/^RIP 3$/m.test(plain.stderr)) throw new Error(`the plain patch did not work (${plain.code}):\n${plain.stderr}`);
    peerMs.push(plain.ms);
    console.log(`distro-patch: round ${round + 1}: castle ${(patched.ms / 1000).toFixed(2)} s, by hand ${(plain.ms / 1000).toFixed(2)} s`);
  }
  const name = "libc patch (musl _Exit.c) to the running distro: rebuild + `sh -c 'exit 3'` prints RIP 3";
  return [
    row(name, median(castleMs), median(peerMs), "make + make install in the plain tree's musl build dir, then the command (unshare + chroot)"),
    row(name, median(castleMs), TARGET_MS, "target: under 5 s"),
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().then(printRows, (error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
