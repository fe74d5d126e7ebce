// @castle/cache: the local content-addressed store, deterministic archives, the S3 remote.
export type * from "./types";
export { openStore, defaultStoreRoot, LocalStore, writeFileAtomic } from "./store/local-store";
export { digestTree, entryRecord, hashFile, type TreeDigest } from "./store/digest-tree";
export { walkTree } from "./store/walk-tree";
export { recordRoot, readRoots, type RootRecord } from "./store/roots";
export { pruneStore, useStore, diskUsage, type PruneOptions, type PruneResult } from "./store/prune";
export { verifyStore, type VerifyResult } from "./store/verify";
export { removeTree } from "./store/remove-tree";
export { acquireLock, withLock, type HeldLock, type LockOptions } from "./store/file-lock";
export { applyOverlayMarks, listOpaqueDirs, treeutilPath, type OverlayMark } from "./store/treeutil";
export { packTree, packTreeToFile, type PackOptions, type PackedBlob } from "./archive/pack";
export { unpackTree, type UnpackOptions, type UnpackResult } from "./archive/unpack";
export { defaultCompression, findZstd, sniffCompression, type Compression } from "./archive/compress";
export { openRemote, S3Remote, type RemoteOptions, type PreparedPush } from "./remote/s3-remote";
export { pushKeys, pullKeys, type SyncOptions, type SyncReport, type PushOutcome, type PullOutcome } from "./remote/sync";
export { listRemote, pruneRemote, type RemotePruneOptions, type RemotePruneResult } from "./remote/prune";
export { parseS3Url, resolveS3Config, type S3Location, type S3Settings, type S3Credentials } from "./remote/s3-url";
export { isNotFound, type RemoteErrorCode } from "./remote/s3-errors";
