// @castle/cache/remote: remote caches (S3, OCI registries, HTTP, directories) and the archives
// they move, as a separate entry so that programs load it only when a remote is actually used.
export { openRemote, REMOTE_SCHEMES, type RemoteOptions } from "./remote/open-remote";
export { CacheRemote, type PreparedPush } from "./remote/cache-remote";
export { pushKeys, pullKeys, type SyncOptions, type SyncReport, type PushOutcome, type PullOutcome } from "./remote/sync";
export { listRemote, pruneRemote, type RemotePruneOptions, type RemotePruneResult } from "./remote/prune";
export { generateSigningKey, parsePublicKey, parseSigningKey, type PublicKey, type SigningKey } from "./remote/signing";
export { DEFAULT_TRANSFER_LIMITS, type TransferLimits } from "./remote/transfer-watch";
export { withHint } from "./remote/remote-errors";
export { packTree, packTreeToFile, type PackOptions, type PackedBlob } from "./archive/pack";
export { unpackTree, type UnpackOptions, type UnpackResult } from "./archive/unpack";
