// Owns unpacking a downloaded archive into a staging tree with the system's GNU tar
// (compression detected from the file's first bytes: gzip, bzip2, xz, lzma, lzip, zstd; the
// Debian packages are tar, gzip, bzip2, xz-utils, lzip and zstd). A Debian package (.deb, an ar
// archive) is unpacked as its data.tar.* member, streamed to tar. GNU tar refuses members with
// ".." and strips leading "/", and creates symlinks only after every file, so nothing can be
// written through a link; afterwards we check that nothing landed beside the tree, refuse device
// nodes, fifos and sockets, and drop setuid/setgid bits.

import { spawn } from "node:child_process";
import { accessSync, chmodSync, closeSync, constants, createReadStream, fstatSync, lstatSync, openSync, readSync, readdirSync, statSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { SourceError, abortedError } from "./errors";

export interface ExtractRequest {
  /** Source name, for messages. */
  name: string;
  file: string;
  /** An empty directory; its parent must hold nothing the archive could reach. */
  dest: string;
  /** Leading path components to drop. */
  strip: number;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Bytes of the archive fed to tar so far, at most every 100 ms (and once at the end). */
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
}

interface Compression {
  /** tar's option for it. */
  flag: string | undefined;
  tool: string | undefined;
  /** The Debian package that provides the tool. */
  pkg: string;
}

/** The compression of an archive by its magic bytes; undefined when it is not a tar archive. */
export function detectCompression(file: string, offset = 0): Compression | undefined {
  const head = Buffer.alloc(512);
  const fd = openSync(file, "r");
  let n: number;
  try {
    n = readSync(fd, head, 0, head.length, offset);
  } finally {
    closeSync(fd);
  }
  const starts = (...bytes: number[]) => n >= bytes.length && bytes.every((b, i) => head[i] === b);
  if (starts(0x1f, 0x8b)) return { flag: "--gzip", tool: "gzip", pkg: "gzip" };
  if (starts(0x42, 0x5a, 0x68)) return { flag: "--bzip2", tool: "bzip2", pkg: "bzip2" };
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return { flag: "--xz", tool: "xz", pkg: "xz-utils" };
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return { flag: "--zstd", tool: "zstd", pkg: "zstd" };
  if (starts(0x4c, 0x5a, 0x49, 0x50)) return { flag: "--lzip", tool: "lzip", pkg: "lzip" };
  if (starts(0x5d, 0x00, 0x00)) return { flag: "--lzma", tool: "xz", pkg: "xz-utils" };
  if (n >= 262 && head.toString("latin1", 257, 262) === "ustar") return { flag: undefined, tool: undefined, pkg: "tar" };
  return undefined;
}

/** Where a .deb's data.tar.* member lies in the file; undefined when the file is not an ar archive. */
export function debDataMember(file: string): { start: number; size: number } | undefined {
  const fd = openSync(file, "r");
  try {
    const magic = Buffer.alloc(8);
    if (readSync(fd, magic, 0, 8, 0) !== 8 || magic.toString("latin1") !== "!<arch>\n") return undefined;
    const fileSize = fstatSync(fd).size;
    const header = Buffer.alloc(60);
    for (let at = 8; at + 60 <= fileSize; ) {
      if (readSync(fd, header, 0, 60, at) !== 60 || header.toString("latin1", 58, 60) !== "`\n") break;
      const name = header.toString("latin1", 0, 16).trim().replace(/\/$/, "");
      const size = Number(header.toString("latin1", 48, 58).trim());
      if (!Number.isSafeInteger(size) || size < 0 || at + 60 + size > fileSize) break;
      if (name.startsWith("data.tar")) return { start: at + 60, size };
      at += 60 + size + (size % 2);
    }
    throw new SourceError("CASTLE_EXTRACT_FAILED", `${file}: an ar archive without a data.tar member is not a Debian package`, {
      data: { file },
    });
  } finally {
    closeSync(fd);
  }
}

/** Unpacks req.file into req.dest, or throws a CastleError and leaves the caller to discard. */
export async function extractArchive(req: ExtractRequest): Promise<void> {
  const env = req.env ?? process.env;
  const member = debDataMember(req.file);
  const compression = detectCompression(req.file, member?.start ?? 0);
  if (!compression) {
    throw new SourceError("CASTLE_EXTRACT_FAILED", `${req.name}: the downloaded file is not a tar archive`, {
      data: { name: req.name, file: req.file }, hint: "set extract: false to use the file as it is",
    });
  }
  const tar = requireTool("tar", "tar", env);
  if (compression.tool) requireTool(compression.tool, compression.pkg, env);
  const before = new Set(readdirSync(dirname(req.dest)));
  // tar always reads from a pipe, so that what it has read so far can be reported.
  const args = [
    "-x", "--no-same-owner", "--delay-directory-restore", "--preserve-permissions",
    ...(compression.flag ? [compression.flag] : []),
    "-f", "-", "-C", req.dest, `--strip-components=${req.strip}`,
  ];
  await run(tar, args, req, { ...env, LC_ALL: "C" }, member ?? { start: 0, size: statSync(req.file).size });
  for (const name of readdirSync(dirname(req.dest))) {
    if (!before.has(name)) {
      throw new SourceError("CASTLE_ARCHIVE_UNSAFE", `${req.name}: the archive wrote ${name} outside its directory`, {
        data: { name: req.name, entry: name },
      });
    }
  }
  const entries = checkTree(req.dest, req.name);
  if (entries === 0) {
    throw new SourceError(
      "CASTLE_EXTRACT_FAILED",
      `${req.name}: nothing is left of the archive after dropping ${req.strip} leading path component(s)`,
      { data: { name: req.name, strip: req.strip }, hint: "set strip to a smaller number (0 keeps every path)" },
    );
  }
}

function run(
  command: string, args: string[], req: ExtractRequest, env: NodeJS.ProcessEnv, input: { start: number; size: number },
): Promise<void> {
  return new Promise((resolve, reject) => {
    if (req.signal?.aborted) return reject(abortedError(`unpacking ${req.name}`, req.signal));
    const child = spawn(command, args, { stdio: ["pipe", "ignore", "pipe"], env });
    // tar may exit before reading everything (an error): its closed stdin is not our failure.
    child.stdin!.on("error", () => {});
    if (input.size === 0) child.stdin!.end();
    else {
      const stream = createReadStream(req.file, { start: input.start, end: input.start + input.size - 1, highWaterMark: 1 << 20 });
      let fed = 0;
      let reported = 0;
      stream.on("data", (chunk) => {
        fed += chunk.length;
        const now = Date.now();
        if (req.onProgress && now - reported >= 100) {
          reported = now;
          req.onProgress(fed, input.size);
        }
      });
      stream.pipe(child.stdin!);
    }
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const onAbort = () => child.kill("SIGKILL");
    req.signal?.addEventListener("abort", onAbort, { once: true });
    child.once("error", (error) => {
      req.signal?.removeEventListener("abort", onAbort);
      reject(new SourceError("CASTLE_EXTRACT_FAILED", `${req.name}: cannot run ${command}`, { cause: error }));
    });
    child.once("close", (code, signal) => {
      req.signal?.removeEventListener("abort", onAbort);
      if (req.signal?.aborted) return reject(abortedError(`unpacking ${req.name}`, req.signal));
      if (code === 0) return resolve();
      reject(
        new SourceError(
          "CASTLE_EXTRACT_FAILED",
          `${req.name}: tar could not unpack the archive (${signal ?? `exit ${code}`}):\n${stderr.trim()}`,
          { data: { name: req.name, file: req.file, code, signal, stderr: stderr.trim() } },
        ),
      );
    });
  });
}

/** Refuses special files and clears setuid/setgid bits; returns the number of entries. */
function checkTree(root: string, name: string): number {
  let count = 0;
  const visit = (dir: string, rel: string) => {
    for (const entry of readdirSync(dir)) {
      const abs = join(dir, entry);
      const path = rel === "" ? entry : `${rel}/${entry}`;
      const st = lstatSync(abs);
      count++;
      if (st.isDirectory()) {
        if (st.mode & 0o6000) chmodSync(abs, st.mode & 0o1777);
        visit(abs, path);
      } else if (st.isFile()) {
        if (st.mode & 0o6000) chmodSync(abs, st.mode & 0o1777);
      } else if (!st.isSymbolicLink()) {
        throw new SourceError("CASTLE_ARCHIVE_UNSAFE", `${name}: the archive holds ${path}, a device, fifo or socket`, {
          data: { name, entry: path }, hint: "sources may only contain files, directories and symlinks",
        });
      }
    }
  };
  visit(root, "");
  return count;
}

/** The absolute path of an executable on PATH, or a CASTLE_MISSING_TOOL error naming its package. */
export function requireTool(tool: string, pkg: string, env: NodeJS.ProcessEnv): string {
  for (const dir of (env.PATH ?? "/usr/bin:/bin").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, tool);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory.
    }
  }
  throw new SourceError("CASTLE_MISSING_TOOL", `${tool} is needed to unpack this source but is not on PATH`, {
    data: { tool, package: pkg }, hint: `install it, e.g. \`apt-get install ${pkg}\``,
  });
}
