// @castle/cache: the local content-addressed store, deterministic archives, the S3 remote.
export type * from "./types";
export { openStore, defaultStoreRoot, LocalStore, writeFileAtomic } from "./store/local-store";
export { digestTree, hashFile, type TreeDigest } from "./store/digest-tree";
export { walkTree } from "./store/walk-tree";
export { removeTree } from "./store/remove-tree";
export { acquireLock, withLock, type HeldLock } from "./store/file-lock";
export { applyOverlayMarks, listOpaqueDirs, treeutilPath, type OverlayMark } from "./store/treeutil";
