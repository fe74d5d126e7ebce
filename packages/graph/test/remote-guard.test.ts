// Tests for the build's view of its remotes (RemoteGuard), with real remotes — directories, a
// static-free dead port, real stores: import remotes asked in order, a refused or failing copy
// falling through to the next remote, a dead remote asked once and reported once with the
// layers it cost, who signed what was pulled, exports warned once or failed with a truthful hint
// under --strict-export, and a cancellation that blames no remote.

import { createServer } from "node:net";
import { writeFileSync, readFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { generateSigningKey, openRemote, openStore, parseSigningKey, type KeyRecord, type Remote, type Store } from "@castle/cache";
import { RemoteGuard } from "../src/schedule/remote-guard";
import type { BuildEvent } from "../src/types";
import { useTempDirs } from "./helpers/temp-dirs";

const temp = useTempDirs();
const key = generateSigningKey("ci-1");

async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A store holding layers named by labels, and their records. */
async function storeWith(labels: string[]): Promise<{ store: Store; records: KeyRecord[] }> {
  const store = openStore(temp("store"));
  const records: KeyRecord[] = [];
  for (const label of labels) {
    const staging = await store.stage(label);
    mkdirSync(join(staging.tree, "etc"));
    writeFileSync(join(staging.tree, "etc", label), label);
    records.push(await store.commit(staging, label.charCodeAt(0).toString(16).padStart(64, "0"), { name: label, buildMs: 1, origin: "built" }));
  }
  return { store, records };
}

function dirRemote(dir: string, options: Parameters<typeof openRemote>[1] = {}): Remote {
  return openRemote(pathToFileURL(dir).href, { negativeTtlMs: 0, ...options });
}

function guardOf(options: Omit<ConstructorParameters<typeof RemoteGuard>[0], "onEvent">) {
  const events: BuildEvent[] = [];
  const guard = new RemoteGuard({ ...options, onEvent: (e) => events.push(e) });
  return { guard, events, warnings: () => events.filter((e) => e.type === "warning") as Array<Extract<BuildEvent, { type: "warning" }>> };
}

describe("RemoteGuard imports", () => {
  it("asks remotes in order; a dead first remote is asked once and reported once, with the layers it cost", async () => {
    const { store: ci, records } = await storeWith(["a", "b", "c"]);
    const second = temp("second");
    for (const record of records.slice(0, 2)) await dirRemote(second, { signingKey: parseSigningKey(key.secret) }).push(record, ci);
    const dead = openRemote(`http://127.0.0.1:${await deadPort()}/cache`, { negativeTtlMs: 0 });
    const { guard, events, warnings } = guardOf({ imports: [dead, dirRemote(second, { trustedKeys: [key.publicLine] })] });
    const laptop = openStore(temp("laptop"));
    for (const record of records) {
      const manifest = await guard.lookup(record.name, record.key);
      if (record.name === "c") {
        expect(manifest).toBeUndefined();
        continue;
      }
      expect(await guard.pull(record.name, record.key, laptop, { manifest })).toMatchObject({ digest: record.digest });
    }
    expect(warnings()).toEqual([]); // Nothing is said until the run ends.
    guard.finish();
    expect(warnings()).toHaveLength(1);
    // Two of its layers came from the next remote; one was not anywhere and is built.
    expect(warnings()[0]).toMatchObject({
      code: "CASTLE_REMOTE_UNREACHABLE",
      message: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/cache unreachable: built 1 layer locally \(c\), pulled 2 layers from the next remote instead — cannot reach/),
    });
    expect(events.filter((e) => e.type === "note")).toEqual([{ type: "note", message: expect.stringMatching(/^file:\/\/.*: 2 layers pulled, signed by ci-1 \(trusted\)$/) }]);
  });

  it("falls through to the next remote when a copy is refused, and remembers the refusal", async () => {
    const { store: ci, records } = await storeWith(["x"]);
    const record = records[0]!;
    const [bad, good] = [temp("bad"), temp("good")];
    await dirRemote(bad).push(record, ci);
    await dirRemote(good).push(record, ci);
    // Damage the first remote's blob (a consistent size, other bytes).
    const manifest = JSON.parse(readFileSync(join(bad, "keys", record.key), "utf8")) as { blob: string };
    const blobFile = join(bad, "blobs/sha256", manifest.blob);
    const bytes = readFileSync(blobFile);
    bytes[bytes.length >> 1]! ^= 0xff;
    writeFileSync(blobFile, bytes);
    const { guard, events, warnings } = guardOf({ imports: [dirRemote(bad), dirRemote(good)] });
    const laptop = openStore(temp("laptop"));
    const found = await guard.lookup("x", record.key);
    expect(await guard.pull("x", record.key, laptop, { manifest: found })).toMatchObject({ digest: record.digest });
    expect(guard.refused("x")).toBe(true);
    guard.finish();
    expect(warnings().map((w) => w.code)).toEqual(["CASTLE_REMOTE_CORRUPT", "CASTLE_REMOTE_UNSIGNED"]);
    expect(warnings()[0]!.message).toMatch(/sent bad copies: pulled 1 layer from the next remote instead — /);
    // What came from the good remote is unsigned, and the user is told so, once.
    expect(warnings()[1]!.message).toMatch(/^file:\/\/.*: 1 layer pulled, none signed — anyone who can write to it/);
    expect(events.filter((e) => e.type === "note")).toEqual([]);
  });

  it("says nothing about a remote when the build is cancelled", async () => {
    const { store: ci, records } = await storeWith(["big"]);
    const dir = temp("remote");
    await dirRemote(dir).push(records[0]!, ci);
    const { guard, warnings } = guardOf({ imports: [dirRemote(dir)] });
    const controller = new AbortController();
    controller.abort("SIGINT");
    const found = await guard.lookup("big", records[0]!.key);
    expect(await guard.pull("big", records[0]!.key, openStore(temp("laptop")), { manifest: found, signal: controller.signal })).toBeUndefined();
    guard.finish();
    expect(warnings()).toEqual([]);
  });
});

describe("RemoteGuard exports", () => {
  it("a dead export remote is tried once and reported once", async () => {
    const { store, records } = await storeWith(["a", "b"]);
    const dead = openRemote(`oci://127.0.0.1:${await deadPort()}/cache`, { negativeTtlMs: 0 });
    const { guard, warnings } = guardOf({ exportTo: dead });
    for (const record of records) expect(await guard.push(record.name, record, store)).toEqual({ kind: "skipped" });
    guard.finish();
    expect(warnings()).toEqual([expect.objectContaining({ code: "CASTLE_REMOTE_UNREACHABLE", message: expect.stringMatching(/unreachable: 2 layers not exported \(a, b\)/) })]);
  });

  it("with --strict-export returns the failure with a hint that says what --strict-export does", async () => {
    const { store, records } = await storeWith(["a"]);
    const readOnly = openRemote("https://127.0.0.1:9/cache", { negativeTtlMs: 0 });
    const { guard, warnings } = guardOf({ exportTo: readOnly, strictExport: true });
    const outcome = await guard.push("a", records[0]!, store);
    expect(outcome).toMatchObject({ kind: "failed", error: { code: "CASTLE_REMOTE_UNSUPPORTED", hint: expect.stringMatching(/--strict-export makes a failed export fail the build/) } });
    guard.finish();
    expect(warnings()).toEqual([]);
  });

  it("pushes and reports the bytes", async () => {
    const { store, records } = await storeWith(["a"]);
    const { guard } = guardOf({ exportTo: dirRemote(temp("out")) });
    expect(await guard.push("a", records[0]!, store)).toMatchObject({ kind: "pushed", uploadedBytes: expect.any(Number) });
  });
});
