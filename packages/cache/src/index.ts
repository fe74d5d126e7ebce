// @castle/cache: the local content-addressed store, deterministic archives, the S3 remote.
export type * from "./types";
export { openStore, defaultStoreRoot, LocalStore, writeFileAtomic } from "./store/local-store";
export { digestTree, entryRecord, hashFile, type TreeDigest } from "./store/digest-tree";
export { walkTree } from "./store/walk-tree";
export { recordRoot, readRoots, type RootRecord } from "./store/roots";
export { pruneStore, diskUsage, type PruneOptions, type PruneResult } from "./store/prune";
export { verifyStore, type VerifyResult } from "./store/verify";
export { removeTree } from "./store/remove-tree";
export { acquireLock, withLock, type HeldLock } from "./store/file-lock";
export { applyOverlayMarks, listOpaqueDirs, treeutilPath, type OverlayMark } from "./store/treeutil";
export { packTree, packTreeToFile, type PackOptions, type PackedBlob } from "./archive/pack";
export { unpackTree, type UnpackOptions, type UnpackResult } from "./archive/unpack";
export { defaultCompression, findZstd, sniffCompression, type Compression } from "./archive/compress";
