// Owns writing a flattened tree as a plain tar (optionally gzipped): sorted entries, fixed
// owners (0:0) and mtimes, so the same system exports to the same bytes.

import { createReadStream, createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { pack } from "tar-stream";
import type { TreeEntry } from "@castle/cache";

const EPOCH = new Date(315532800 * 1000);

export async function writeTar(entries: TreeEntry[], file: string, gzip: boolean): Promise<void> {
  const archive = pack();
  const output = gzip ? pipeline(archive, createGzip({ level: 6 }), createWriteStream(file)) : pipeline(archive, createWriteStream(file));
  const common = { uid: 0, gid: 0, uname: "root", gname: "root", mtime: EPOCH };
  for (const entry of entries) {
    switch (entry.kind) {
      case "dir":
        archive.entry({ ...common, name: `${entry.path}/`, type: "directory", mode: entry.mode });
        break;
      case "symlink":
        archive.entry({ ...common, name: entry.path, type: "symlink", linkname: entry.target, mode: 0o777 });
        break;
      case "fifo":
        archive.entry({ ...common, name: entry.path, type: "fifo", mode: entry.mode });
        break;
      case "device":
        archive.entry({
          ...common, name: entry.path, type: entry.type === "char" ? "character-device" : "block-device",
          mode: entry.mode, devmajor: entry.major, devminor: entry.minor,
        });
        break;
      case "file":
        await new Promise<void>((resolve, reject) => {
          const sink = archive.entry({ ...common, name: entry.path, type: "file", mode: entry.mode, size: entry.size }, (error) =>
            error ? reject(error) : resolve(),
          );
          createReadStream(entry.absPath).on("error", reject).pipe(sink);
        });
        break;
      default:
        break;
    }
  }
  archive.finalize();
  await output;
}
