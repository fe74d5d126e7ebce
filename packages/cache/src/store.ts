// @castle/cache/store: the local store alone, for programs that must start fast: importing it
// loads no archive, remote or AWS SDK code (those are in @castle/cache/remote).
export type * from "./types";
export { openStore, defaultStoreRoot, LocalStore, writeFileAtomic, type CorruptTree, type StoreOptions } from "./store/local-store";
export { LowerStores, lowerStoreRoots } from "./store/lower-stores";
export { digestTree, entryRecord, hashFile, type TreeDigest } from "./store/digest-tree";
export { walkTree } from "./store/walk-tree";
export { recordRoot, readRoots, rootPath, type RootRecord } from "./store/roots";
export { pinLayers, pinnedClaim, readPins, type LayerPin, type Pinned } from "./store/pins";
export { processLives, processStart } from "./store/process-start";
export { ownedName, ownerLives, removeDeadOwners } from "./store/owned-names";
export { pruneStore, pruneGeneration, pruneGenerationPath, useStore, diskUsage, type PruneOptions, type PruneResult } from "./store/prune";
export type { NestedStore } from "./store/nested-use";
export { LocalStoreClaim } from "./store/store-claim";
export { verifyStore, type VerifyResult } from "./store/verify";
export { removeTree } from "./store/remove-tree";
export { acquireLock, withLock, type HeldLock, type LockOptions } from "./store/file-lock";
export { applyOverlayMarks, listOpaqueDirs, treeutilPath, type OverlayMark } from "./store/treeutil";
