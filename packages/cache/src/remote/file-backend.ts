// Owns the directory backend (file:///mnt/team-cache, an NFS mount, a USB disk): the shared
// layout as files, so the directory can also be served as it is by any web server (the HTTP
// backend reads it); files get the modes new files get (0666 less the umask), so that a web
// server running as another user can read them. Every file appears by rename from a temp name in its own directory after an
// fsync, so a reader never sees half a blob or half a manifest, even across machines.

import { chmodSync, closeSync, createReadStream, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { copyFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CastleError } from "@castle/errors";
import type { BlobDigest, LayerKey, RemoteManifest } from "../types";
import { type ExpectedBlob, type ListedBlob, type PackedFile, type RemoteBackend, type TransferOptions, blobPath, keyPath } from "./backend";
import { MAX_MANIFEST_BYTES, isHex64, manifestTooLarge } from "./manifest";

/** Files are created as any new file is (0666 less the umask): readable by whoever serves them. */
const FILE_MODE = 0o666;

export class FileBackend implements RemoteBackend {
  readonly root: string;
  readonly where: string;
  readonly writable = true;
  readonly authAdvice = "check the directory's permissions";

  constructor(readonly url: string) {
    this.root = directoryOf(url);
    this.where = this.root;
  }

  async getManifest(key: LayerKey): Promise<string | undefined> {
    const file = join(this.root, keyPath(key));
    const size = sizeOf(file);
    if (size === undefined) return undefined;
    if (size > MAX_MANIFEST_BYTES) throw manifestTooLarge(this.url, key, size);
    return readFileSync(file, "utf8");
  }

  async getBlob(digest: BlobDigest) {
    const file = join(this.root, blobPath(digest));
    const size = sizeOf(file);
    if (size === undefined) return undefined;
    return { body: createReadStream(file, { highWaterMark: 1 << 20 }), size };
  }

  async hasBlob(blob: ExpectedBlob): Promise<boolean> {
    return sizeOf(join(this.root, blobPath(blob.digest))) === blob.size;
  }

  async putBlob(blob: PackedFile, options: TransferOptions): Promise<void> {
    const target = join(this.root, blobPath(blob.digest));
    await this.place(target, async (temp) => {
      await copyFile(blob.file, temp);
      // The packed file is private to the store; the export is for others (a web server's user).
      chmodSync(temp, FILE_MODE & ~process.umask());
      syncFile(temp);
    });
    options.onProgress?.(blob.size);
    const size = sizeOf(target);
    if (size !== blob.size) {
      throw new CastleError("CASTLE_REMOTE_CORRUPT", `the blob ${blob.digest} written to ${this.url} has ${size ?? 0} bytes, expected ${blob.size}`, {
        data: { url: this.url, blob: blob.digest },
      });
    }
  }

  async putManifest(manifest: RemoteManifest, text: string): Promise<void> {
    await this.place(join(this.root, keyPath(manifest.key)), async (temp) => {
      const fd = openSync(temp, "wx", FILE_MODE);
      try {
        writeSync(fd, text);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    });
  }

  async *listKeys(): AsyncGenerator<LayerKey> {
    for (const name of namesIn(join(this.root, "keys"))) if (isHex64(name)) yield name;
  }

  async *listBlobs(): AsyncGenerator<ListedBlob> {
    const dir = join(this.root, "blobs/sha256");
    for (const name of namesIn(dir)) {
      if (!isHex64(name)) continue;
      try {
        const stat = statSync(join(dir, name));
        yield { digest: name, size: stat.size, lastModified: stat.mtime };
      } catch {
        // Removed meanwhile.
      }
    }
  }

  async remove(objects: { keys: LayerKey[]; blobs: BlobDigest[] }): Promise<void> {
    for (const path of [...objects.keys.map(keyPath), ...objects.blobs.map(blobPath)]) {
      try {
        unlinkSync(join(this.root, path));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      }
    }
  }

  async close(): Promise<void> {}

  /** Writes target through a temp file beside it, then renames it into place. */
  private async place(target: string, write: (temp: string) => Promise<void>): Promise<void> {
    mkdirSync(dirname(target), { recursive: true });
    const temp = join(dirname(target), `.tmp-${randomBytes(6).toString("hex")}`);
    try {
      await write(temp);
      renameSync(temp, target);
      syncDir(dirname(target));
    } catch (error) {
      try {
        unlinkSync(temp);
      } catch {
        // Never created.
      }
      throw error;
    }
  }
}

/** The directory of a file:// URL (absolute, no host other than localhost). */
export function directoryOf(url: string): string {
  let path: string;
  try {
    path = fileURLToPath(url);
  } catch (error) {
    throw new CastleError("CASTLE_REMOTE_URL", `bad remote cache URL ${JSON.stringify(url)}: ${(error as Error).message}`, {
      cause: error,
      data: { url },
      hint: "write a directory as file:///absolute/path",
    });
  }
  return path.replace(/\/+$/, "") || "/";
}

function sizeOf(file: string): number | undefined {
  try {
    const stat = statSync(file);
    return stat.isFile() ? stat.size : undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT" || (error as NodeJS.ErrnoException).code === "ENOTDIR") return undefined;
    throw error;
  }
}

function namesIn(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}

function syncFile(file: string): void {
  const fd = openSync(file, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function syncDir(dir: string): void {
  try {
    syncFile(dir);
  } catch {
    // Some filesystems (NFS, FUSE) refuse fsync on a directory; the rename is still atomic.
  }
}
