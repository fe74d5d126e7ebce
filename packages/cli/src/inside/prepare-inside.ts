// Owns getting a system's inside ready before it starts: the definition's work tree, the
// sources the definition asks to edit (`system({ edit: [...] })`) placed at ~/src/<name> and
// recorded in the edits file, then every mount (system-mounts.ts).

import { existsSync } from "node:fs";
import { join } from "node:path";
import type { LocalStore } from "@castle/cache/store";
import type { System } from "@castle/graph";
import { checkoutDir, type DefinitionLocation } from "../context/locate-definition";
import { definitionTree } from "./definition-tree";
import { placeSourceFiles } from "./edit-files";
import { readEdits, writeEdits } from "./inside-info";
import type { UserMount } from "./mount-flags";
import { systemMounts, type SystemMounts } from "./system-mounts";

export interface InsideRequest {
  system: System;
  /** False for --no-castle. */
  castle: boolean;
  network: "host" | "none";
  mounts: UserMount[];
  lowers: string[];
  state: { dir: string; upper: string; nestedStore: string };
  home: string;
  dataDir: string;
  store: LocalStore;
  location: DefinitionLocation;
  instance: string;
  run: string[];
  importCaches: string[];
  trustedKeys: string[];
  /** A declared source's pinned files as a tree in the store (for `edit`). */
  sourceTree: (name: string) => Promise<string>;
  warn: (line: string) => void;
}

export async function prepareInside(request: InsideRequest): Promise<SystemMounts> {
  const castle = request.castle && request.system.castle;
  const definition = castle
    ? definitionTree(request.location, request.state.dir, (commit) => checkoutDir(request.store, commit), request.warn)
    : undefined;
  if (castle && request.system.edit.length > 0) await placeDeclaredEdits(request);
  return systemMounts({
    castle,
    network: request.network,
    userMounts: request.mounts,
    lowers: request.lowers,
    upper: request.state.upper,
    systemDir: request.state.dir,
    nestedCastle: request.state.nestedStore,
    home: request.home,
    dataDir: request.dataDir,
    stores: [request.store.root, ...request.store.lowers.roots],
    ...(definition ? { definition } : {}),
    instance: request.instance,
    run: request.run,
    importCaches: request.importCaches,
    trustedKeys: request.trustedKeys,
  });
}

/** Puts each source the definition asks to edit at ~/src/<name> unless it is there already. */
async function placeDeclaredEdits(request: InsideRequest): Promise<void> {
  const editsFile = join(request.state.nestedStore, "edits.json");
  const edits = readEdits(editsFile);
  let changed = false;
  for (const name of request.system.edit) {
    const host = join(request.state.dir, "src", name);
    if (!existsSync(host)) await placeSourceFiles(await request.sourceTree(name), host);
    const guest = `${request.home}/src/${name}`;
    if (edits.sources[name] !== guest) {
      edits.sources[name] = guest;
      changed = true;
    }
  }
  if (changed) writeEdits(editsFile, edits);
}
