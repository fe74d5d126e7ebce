// Owns assembling Castle's runtime (packages/cli/runtime), run by scripts/build.mjs after the CLI
// is bundled: everything `castle` needs to run inside any system, whatever its libc (musl, glibc
// or none). `castle run` bind-mounts it read-only at RUNTIME_MOUNT (/.castle) in every system:
//
//   bin/castle                  the command (a script for libexec/node)
//   libexec/node, libexec/zstd  this machine's programs, their ELF interpreter and rpath set by
//                               patchelf to lib/ below (they never read the system's libraries)
//   lib/                        the loader and the shared libraries those programs need
//   dist/                       the CLI bundle (dynamic C helpers carried like node)
//   node_modules/esbuild, node_modules/@esbuild/<platform>   what the bundle loads for castle.ts
//   state/, stores/0..7         empty mount points: the nested Castle's own dirs, and the stores
//                               of the Castles outside, read-only
//   castle-runtime.json         what it holds (and the fingerprints of what it was copied from)
//
// The copied programs are made once and reused (hard links) while their sources do not change;
// the bundle is linked anew on every build. The new runtime is assembled beside the old one and
// renamed into place, so a running castle never sees half of it.

import { execFileSync } from "node:child_process";
import {
  chmodSync, closeSync, copyFileSync, existsSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync,
  readSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync,
} from "node:fs";
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";

/** Where every system sees the runtime. */
export const RUNTIME_MOUNT = "/.castle";
/** How many stores of outer Castles a nested Castle can read (one per level of nesting). */
export const MAX_LOWER_STORES = 8;
const FORMAT = 1;

export async function buildRuntime(root) {
  const cli = join(root, "packages/cli");
  const dist = join(cli, "dist");
  const target = join(cli, "runtime");
  if (!existsSync(join(dist, "castle.cjs"))) return;
  if (!hasPatchelf()) {
    rmSync(target, { recursive: true, force: true });
    console.warn(
      "castle build: patchelf is not installed (apt install patchelf): Castle's runtime for use inside systems " +
        "was not made, so `castle` will not be available inside the systems it runs",
    );
    return;
  }
  const temp = join(cli, `.runtime-${process.pid}`);
  rmSync(temp, { recursive: true, force: true });
  const previous = readManifest(target);
  const carried = {};
  try {
    mkdirSync(join(temp, "lib"), { recursive: true });
    mkdirSync(join(temp, "libexec"));
    const programs = { node: realpathSync(process.execPath) };
    const zstd = findOnPath("zstd");
    if (zstd) programs.zstd = realpathSync(zstd);
    for (const [name, source] of Object.entries(programs)) {
      const before = previous?.carried?.[name];
      carried[name] = carry(source, join(temp, "libexec", name), temp, before && { runtime: target, file: join(target, "libexec", name), print: before });
    }
    copyTree(dist, join(temp, "dist"), temp);
    const requireFromDist = createRequire(join(dist, "core.cjs"));
    const esbuild = dirname(requireFromDist.resolve("esbuild/package.json"));
    copyTree(esbuild, join(temp, "node_modules/esbuild"), temp);
    const platform = `@esbuild/${process.platform}-${process.arch}`;
    try {
      const native = dirname(createRequire(join(esbuild, "package.json")).resolve(`${platform}/package.json`));
      copyTree(native, join(temp, "node_modules", platform), temp);
    } catch {
      // esbuild's own bin/esbuild is then the binary (its install step put it there)
    }
    mkdirSync(join(temp, "bin"));
    writeFileSync(
      join(temp, "bin/castle"),
      `#!${RUNTIME_MOUNT}/libexec/node\n// Castle's command inside a system: the runtime is mounted at ${RUNTIME_MOUNT} by \`castle run\`.\nrequire("${RUNTIME_MOUNT}/dist/castle.cjs");\n`,
      { mode: 0o755 },
    );
    mkdirSync(join(temp, "state"));
    for (let i = 0; i < MAX_LOWER_STORES; i++) mkdirSync(join(temp, "stores", String(i)), { recursive: true });
    const version = JSON.parse(readFileSync(join(cli, "package.json"), "utf8")).version;
    const manifest = {
      format: FORMAT,
      mount: RUNTIME_MOUNT,
      castle: version,
      core: createHash("sha256").update(readFileSync(join(dist, "core.cjs"))).digest("hex"),
      node: process.version,
      arch: process.arch,
      lowerStores: MAX_LOWER_STORES,
      carried,
    };
    writeFileSync(join(temp, "castle-runtime.json"), JSON.stringify(manifest, null, 2) + "\n");
    execFileSync("chmod", ["-R", "a+rX", temp]);
    const old = `${temp}-old`;
    if (existsSync(target)) renameSync(target, old);
    renameSync(temp, target);
    rmSync(old, { recursive: true, force: true });
  } catch (error) {
    rmSync(temp, { recursive: true, force: true });
    throw error;
  }
}

function hasPatchelf() {
  try {
    execFileSync("patchelf", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function findOnPath(name) {
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(":")) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

function readManifest(dir) {
  try {
    const manifest = JSON.parse(readFileSync(join(dir, "castle-runtime.json"), "utf8"));
    return manifest.format === FORMAT ? manifest : undefined;
  } catch {
    return undefined;
  }
}

/** What identifies a program we copy: if none of this changed, last build's copy is still right. */
function fingerprint(file) {
  const st = statSync(file);
  return { path: file, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
}

const same = (a, b) => a && b && a.path === b.path && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino;

/**
 * Puts program `source` at `to` so that it runs from RUNTIME_MOUNT in any root: a static one as
 * it is; a dynamic one with its loader and libraries copied into runtime/lib, and its ELF
 * interpreter and rpath (DT_RPATH, which also covers the libraries' own dependencies) set there.
 * `previous` is the last runtime's copy of the same program: reused (hard links) when neither the
 * program nor any of its libraries changed since. Returns the fingerprints it was made from.
 */
function carry(source, to, runtime, previous) {
  const libraries = sharedLibraries(source);
  const print = { program: fingerprint(source), libraries: libraries.map((lib) => ({ name: lib.name, ...fingerprint(lib.path) })) };
  const reusable = previous && existsSync(previous.file) && JSON.stringify(previous.print) === JSON.stringify(print);
  for (const lib of libraries) {
    const into = join(runtime, "lib", lib.name);
    if (existsSync(into)) continue;
    if (reusable) linkOrCopy(join(previous.runtime, "lib", lib.name), into);
    else copyFileSync(realpathSync(lib.path), into);
  }
  if (reusable) {
    linkOrCopy(previous.file, to);
    return print;
  }
  copyFileSync(source, to);
  chmodSync(to, 0o755);
  const loader = libraries.find((lib) => lib.loader);
  if (loader) {
    execFileSync("patchelf", [
      "--set-interpreter", `${RUNTIME_MOUNT}/lib/${loader.name}`,
      "--set-rpath", `${RUNTIME_MOUNT}/lib`, "--force-rpath", to,
    ], { stdio: ["ignore", "ignore", "inherit"] });
  }
  return print;
}

/** The loader and libraries a dynamic ELF program loads ([] for a static one), from ldd. */
function sharedLibraries(program) {
  let out;
  try {
    out = execFileSync("ldd", [program], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (error) {
    const text = `${error.stdout ?? ""}${error.stderr ?? ""}`;
    if (/not a dynamic executable|statically linked/.test(text)) return [];
    throw new Error(`castle build: cannot list the shared libraries of ${program} with ldd: ${text.trim() || error.message}`);
  }
  const libraries = [];
  for (const line of out.split("\n")) {
    const named = /^\s*(\S+) => (\/\S+)/.exec(line);
    if (named) {
      libraries.push({ name: named[1], path: named[2], loader: false });
      continue;
    }
    const bare = /^\s*(\/\S+) \(0x/.exec(line);
    if (bare) libraries.push({ name: basename(bare[1]), path: bare[1], loader: true });
  }
  if (/statically linked/.test(out)) return [];
  if (!libraries.some((lib) => lib.loader)) throw new Error(`castle build: ldd names no loader for ${program}:\n${out}`);
  return libraries;
}

/** ELF programs that are dynamically linked (the C helpers may be): carried, not linked. */
function isDynamicElf(file) {
  const head = Buffer.alloc(4);
  const fd = openSync(file, "r");
  try {
    readSync(fd, head, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  return head.toString("latin1") === "\x7fELF" && sharedLibraries(file).length > 0;
}

/** Hard-links (or copies) a tree; dynamic ELF programs in it are carried as above. */
function copyTree(from, to, runtime) {
  mkdirSync(to, { recursive: true });
  for (const name of readdirSync(from)) {
    const source = join(from, name);
    const dest = join(to, name);
    const st = lstatSync(source);
    if (st.isDirectory()) copyTree(source, dest, runtime);
    else if (st.isSymbolicLink()) symlinkSync(readlinkSync(source), dest);
    else if (st.isFile() && st.mode & 0o111 && isDynamicElf(source)) carry(source, dest, runtime, undefined);
    else linkOrCopy(source, dest);
  }
}

function linkOrCopy(from, to) {
  try {
    linkSync(from, to);
  } catch {
    copyFileSync(from, to);
    chmodSync(to, statSync(from).mode & 0o7777);
  }
}
