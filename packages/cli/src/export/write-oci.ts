// Owns writing a system as an OCI image layout (what `docker load`-style tools, skopeo and
// podman read): one gzip layer per Castle layer, whiteouts in OCI form, a config carrying the
// system's entrypoint, env and working dir, and an index naming it <system>:latest.

import { createHash } from "node:crypto";
import { createWriteStream, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import type { System } from "@castle/graph";

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

export async function writeOciLayout(dir: string, system: System, layers: { name: string; tree: string }[]): Promise<string> {
  const blobs = join(dir, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const layerDescriptors: Descriptor[] = [];
  const diffIds: string[] = [];
  for (const layer of layers) {
    const { descriptor, diffId } = await writeLayerBlob(blobs, layer.tree);
    layerDescriptors.push(descriptor);
    diffIds.push(diffId);
  }
  const config = {
    architecture: process.arch === "x64" ? "amd64" : process.arch,
    os: "linux",
    config: {
      Env: Object.entries({ PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", ...system.env }).map(([k, v]) => `${k}=${v}`),
      Entrypoint: [...system.entrypoint],
      WorkingDir: system.cwd,
      Hostname: system.hostname,
    },
    rootfs: { type: "layers", diff_ids: diffIds },
    history: layers.map((l) => ({ created_by: `castle layer ${l.name}`, created: "1980-01-01T00:00:00Z" })),
  };
  const configDescriptor = writeJsonBlob(blobs, "application/vnd.oci.image.config.v1+json", config);
  const manifest = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: configDescriptor,
    layers: layerDescriptors,
  };
  const manifestDescriptor = writeJsonBlob(blobs, "application/vnd.oci.image.manifest.v1+json", manifest);
  const index = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [{ ...manifestDescriptor, annotations: { "org.opencontainers.image.ref.name": `${system.name}:latest` } }],
  };
  writeFileSync(join(dir, "index.json"), JSON.stringify(index));
  return manifestDescriptor.digest;
}

async function writeLayerBlob(blobs: string, tree: string): Promise<{ descriptor: Descriptor; diffId: string }> {
  const temp = join(blobs, `.tmp-${process.pid}-${Date.now()}`);
  const compressed = createHash("sha256");
  const uncompressed = createHash("sha256");
  let size = 0;
  const tee = new PassThrough();
  const gunzip = createGunzip();
  gunzip.on("data", (chunk: Buffer) => uncompressed.update(chunk));
  const gunzipped = new Promise<void>((resolve, reject) => gunzip.on("end", resolve).on("error", reject));
  tee.on("data", (chunk: Buffer) => {
    compressed.update(chunk);
    size += chunk.length;
    gunzip.write(chunk);
  });
  tee.on("end", () => gunzip.end());
  const { packTree } = await import("@castle/cache/remote");
  await pipeline(packTree(tree, { compression: "gzip" }), tee, createWriteStream(temp));
  await gunzipped;
  const digest = compressed.digest("hex");
  renameSync(temp, join(blobs, digest));
  return {
    descriptor: { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: `sha256:${digest}`, size },
    diffId: `sha256:${uncompressed.digest("hex")}`,
  };
}

function writeJsonBlob(blobs: string, mediaType: string, value: unknown): Descriptor {
  const bytes = Buffer.from(JSON.stringify(value));
  const digest = createHash("sha256").update(bytes).digest("hex");
  writeFileSync(join(blobs, digest), bytes);
  return { mediaType, digest: `sha256:${digest}`, size: bytes.length };
}
