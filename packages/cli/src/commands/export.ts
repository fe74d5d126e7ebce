// Owns `castle export`: a system's composed root as a tarball (flattened, as it looks when run)
// or as an OCI image layout (one image layer per Castle layer) that container tools load.

import { existsSync, readdirSync } from "node:fs";
import { resolve } from "node:path";
import { pinLayers } from "@castle/cache/store";
import type { BuildOutcome } from "@castle/graph";
import { EXIT } from "../context/exit-codes";
import { parseCommand, SYSTEM_OPTIONS, SYSTEM_OPTIONS_HELP, systemFlags } from "../context/options";
import { buildPrepared, prepareSystem, type PreparedSystem } from "../context/prepare";
import { UsageError } from "../context/usage-error";
import { flattenLayers } from "../export/flatten";
import { withMountPoints } from "../export/mount-points";
import { writeOciLayout } from "../export/write-oci";
import { writeTar } from "../export/write-tar";

const HELP = `usage: castle export <git-url|dir> [branch] [subdir] (--tar FILE | --oci DIR) [options]

Builds what is missing, then writes the system's root:
  --tar FILE   one flattened tarball of the root as it looks when run (gzip if FILE ends in .gz)
  --oci DIR    an OCI image layout named <system>:latest, one layer per Castle layer

examples:
  castle export ./my-system --tar root.tar.gz
  castle export ./my-system --oci ./image && skopeo copy oci:./image docker-archive:image.tar
  castle export https://example.org/distro.git main examples/distro --oci ./distro-image

options:
${SYSTEM_OPTIONS_HELP}
`;

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    { ...SYSTEM_OPTIONS, tar: { type: "string" }, oci: { type: "string" } },
    "export",
  );
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  if ((values.tar === undefined) === (values.oci === undefined)) throw new UsageError("give exactly one of --tar FILE or --oci DIR", "export");
  if (values.oci !== undefined && existsSync(values.oci) && readdirSync(values.oci).length > 0) {
    throw new UsageError(`${values.oci} exists and is not empty`, "export");
  }
  const prepared = await prepareSystem(positionals, systemFlags(values, process.env, "export"), "export", true);
  // The trees being read stay pinned against `cache prune` until the export is written.
  const pin = pinLayers(prepared.store);
  try {
    return await writeExport(prepared, await buildPrepared(prepared, { pin }), values);
  } finally {
    pin.release();
  }
}

async function writeExport(prepared: PreparedSystem, outcome: BuildOutcome, values: { tar?: string; oci?: string }): Promise<number> {
  if (values.tar !== undefined) {
    const file = resolve(values.tar);
    await writeTar(withMountPoints(flattenLayers(outcome.lowers)), file, /\.t?gz$/.test(file));
    process.stdout.write(`${file}\n`);
  } else {
    const dir = resolve(values.oci!);
    const layers = outcome.layers.map((l, i) => ({ name: l.name, tree: outcome.lowers[i]! }));
    const digest = await writeOciLayout(dir, prepared.graph.system, layers);
    process.stdout.write(`${dir} ${prepared.graph.system.name}:latest ${digest}\n`);
  }
  return EXIT.ok;
}
