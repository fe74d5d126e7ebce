// Owns flattening a system's layers into one tree, as overlayfs would show it: upper layers win,
// whiteouts delete, opaque directories hide everything beneath them in lower layers, and a
// symlink is replaced — never followed.

import { walkTree, type TreeEntry } from "@castle/cache/store";

interface Node {
  entry?: TreeEntry;
  children: Map<string, Node>;
}

/** The visible entries of layers composed bottom (index 0) to top, parents before children. */
export function flattenLayers(trees: string[]): TreeEntry[] {
  const root: Node = { children: new Map() };
  for (const tree of trees) {
    for (const entry of walkTree(tree)) apply(root, entry);
  }
  const out: TreeEntry[] = [];
  const visit = (node: Node) => {
    for (const name of [...node.children.keys()].sort()) {
      const child = node.children.get(name)!;
      if (!child.entry) continue; // A path whose parent was replaced by a whiteout or a file.
      out.push(child.entry);
      visit(child);
    }
  };
  visit(root);
  return out;
}

function apply(root: Node, entry: TreeEntry): void {
  const parts = entry.path.split("/");
  const name = parts.pop()!;
  let parent = root;
  for (const part of parts) {
    let next = parent.children.get(part);
    if (!next) {
      next = { children: new Map() };
      parent.children.set(part, next);
    }
    parent = next;
  }
  if (entry.kind === "whiteout") {
    parent.children.delete(name);
    return;
  }
  const existing = parent.children.get(name);
  if (entry.kind === "dir") {
    const keep = existing && existing.entry?.kind === "dir" && !entry.opaque;
    parent.children.set(name, { entry: { ...entry, opaque: false }, children: keep ? existing.children : new Map() });
    return;
  }
  parent.children.set(name, { entry, children: new Map() });
}
