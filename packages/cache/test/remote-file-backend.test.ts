// Tests for the directory backend: the shared layout (blobs/sha256/<digest>, keys/<key>) exactly,
// no temp file left behind, listing, pruning, and bad URLs.

import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { listRemote, openRemote, pruneRemote } from "../src/index";
import { FileBackend, directoryOf } from "../src/remote/file-backend";
import { commitLayer, newStore } from "./helpers/stores";
import { tempDir } from "./helpers/trees";

function filesUnder(dir: string, rel = ""): string[] {
  return readdirSync(join(dir, rel), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(dir, join(rel, e.name)) : [join(rel, e.name)]).sort();
}

describe("FileBackend", () => {
  it("writes the shared layout and nothing else, and lists what it holds", async () => {
    const dir = tempDir("castle-file-remote-");
    const store = newStore();
    const records = [await commitLayer(store, "one"), await commitLayer(store, "two")];
    const remote = openRemote(pathToFileURL(dir).href, { negativeTtlMs: 0 });
    for (const record of records) await remote.push(record, store);
    const manifests = records.map((r) => JSON.parse(readFileSync(join(dir, "keys", r.key), "utf8")) as { blob: string; size: number });
    expect(filesUnder(dir)).toEqual([
      ...manifests.map((m) => `blobs/sha256/${m.blob}`).sort(),
      ...records.map((r) => `keys/${r.key}`).sort(),
    ]);
    // Readable by whoever serves the directory, as any new file would be.
    const mode = 0o666 & ~process.umask();
    for (const file of filesUnder(dir)) expect((statSync(join(dir, file)).mode & 0o777).toString(8), file).toBe(mode.toString(8));
    for (const m of manifests) {
      const blob = readFileSync(join(dir, "blobs/sha256", m.blob));
      expect(blob.length).toBe(m.size);
      expect(createHash("sha256").update(blob).digest("hex")).toBe(m.blob);
    }
    expect((await listRemote(remote)).map((m) => m.name).sort()).toEqual(["one", "two"]);
    const backend = remote.backend as FileBackend;
    const blobs = [];
    for await (const blob of backend.listBlobs()) blobs.push(blob.digest);
    expect(blobs.sort()).toEqual(manifests.map((m) => m.blob).sort());
    // Something that is not Castle's in the directory is ignored.
    writeFileSync(join(dir, "keys", "README"), "not a key");
    expect(await listRemote(remote)).toHaveLength(2);
  });

  it("prunes manifests, then the blobs nothing names", async () => {
    const dir = tempDir("castle-file-remote-");
    const store = newStore();
    const [keep, drop] = [await commitLayer(store, "keep"), await commitLayer(store, "drop")];
    const remote = openRemote(pathToFileURL(dir).href, { negativeTtlMs: 0 });
    await remote.push(keep!, store);
    await remote.push(drop!, store);
    const result = await pruneRemote(remote, { keep: [keep!.key], blobGraceMs: 0 });
    expect(result).toMatchObject({ deletedKeys: [drop!.key], keptKeys: 1 });
    expect(result.deletedBlobs).toHaveLength(1);
    expect(filesUnder(dir).filter((f) => f.startsWith("keys/"))).toEqual([`keys/${keep!.key}`]);
    expect(await remote.pull(keep!.key, newStore())).toMatchObject({ digest: keep!.digest });
  });

  it("takes file:///absolute/dir URLs only", () => {
    expect(directoryOf("file:///mnt/team-cache/")).toBe("/mnt/team-cache");
    expect(() => directoryOf("file://server/share")).toThrow(expect.objectContaining({ code: "CASTLE_REMOTE_URL" }));
    expect(() => openRemote("ftp://host/x")).toThrow(expect.objectContaining({ code: "CASTLE_REMOTE_URL", message: expect.stringMatching(/does not speak ftp/) }));
    expect(() => openRemote("team-cache")).toThrow(expect.objectContaining({ code: "CASTLE_REMOTE_URL" }));
  });

  it("a directory that is not one is a remote fault, not a crash", async () => {
    const dir = tempDir("castle-file-remote-");
    writeFileSync(join(dir, "file"), "x");
    const store = newStore();
    const record = await commitLayer(store, "x");
    const remote = openRemote(pathToFileURL(join(dir, "file")).href, { negativeTtlMs: 0 });
    await expect(remote.push(record, store)).rejects.toMatchObject({ code: expect.stringMatching(/^CASTLE_REMOTE_/) });
    expect(await remote.lookup(record.key)).toBeUndefined();
  });
});
