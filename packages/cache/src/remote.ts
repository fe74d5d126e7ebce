// @castle/cache/remote: the S3 remote cache and the archives it moves, as a separate entry so
// that programs load it (and the AWS SDK behind it) only when a remote is actually used.
export { openRemote, S3Remote, type RemoteOptions, type PreparedPush } from "./remote/s3-remote";
export { pushKeys, pullKeys, type SyncOptions, type SyncReport, type PushOutcome, type PullOutcome } from "./remote/sync";
export { listRemote, pruneRemote, type RemotePruneOptions, type RemotePruneResult } from "./remote/prune";
export { packTree, packTreeToFile, type PackOptions, type PackedBlob } from "./archive/pack";
export { unpackTree, type UnpackOptions, type UnpackResult } from "./archive/unpack";
