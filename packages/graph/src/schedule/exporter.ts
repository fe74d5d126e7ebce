// Owns exporting a build's layers to a remote cache: each layer once it is done, after the layers
// beneath its build root, so that manifests appear in dependency order. A failed export is a
// warning, one per remote for the run (the remote guard's), or with strictExport the build's failure.

import type { KeyRecord, Store } from "@castle/cache";
import { buildRootClosure, type LayerNode } from "../dag/graph";
import type { BuildEvent } from "../types";
import type { RemoteGuard } from "./remote-guard";

export interface ExporterOptions {
  /** The guard holding the export remote. */
  remote: RemoteGuard;
  store: Store;
  onEvent: (event: BuildEvent) => void;
  /** Called with the error of a failed export when exports must not fail. */
  onStrictFailure?: (error: unknown) => void;
  /** Adds to the run's pushed byte count. */
  onPushed: (bytes: number) => void;
}

export class Exporter {
  private readonly pushes = new Map<LayerNode, Promise<void>>();

  constructor(private readonly options: ExporterOptions) {}

  /** Exports a done layer once the layers beneath its build root are exported. */
  push(node: LayerNode, record: KeyRecord): void {
    const { remote, store, onEvent } = this.options;
    const before = buildRootClosure(node).map((dep) => this.pushes.get(dep)).filter(Boolean);
    const push = Promise.allSettled(before).then(async () => {
      const result = await remote.push(node.name, record, store);
      if (result.kind === "failed") this.options.onStrictFailure?.(result.error);
      if (result.kind !== "pushed") return;
      this.options.onPushed(result.uploadedBytes);
      onEvent({ type: "pushed", layer: node.name, key: record.key, uploadedBytes: result.uploadedBytes });
    });
    this.pushes.set(node, push);
  }

  /** Settles once every export started so far has. */
  async settled(): Promise<void> {
    await Promise.allSettled(this.pushes.values());
  }
}
