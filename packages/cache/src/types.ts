// Owns the nouns of the cache: keys (hashes of inputs), digests (hashes of content), the records
// that tie them, the local Store and the Remote. "key" always means inputs; "digest" always means
// content. All three hashes are lowercase hex sha256, 64 characters.

/** Hash of everything that can change a layer's output (computed by the graph). */
export type LayerKey = string;
/** Deterministic digest of a built tree: paths, types, modes, contents, link targets, whiteouts. */
export type OutputDigest = string;
/** sha256 of an archive's bytes (a blob in a remote cache). */
export type BlobDigest = string;

/** What the store remembers about a key: which tree it produced and how. */
export interface KeyRecord {
  key: LayerKey;
  digest: OutputDigest;
  /** Layer name, for humans, logs and `explain`. */
  name: string;
  /** ISO time the record was written. */
  createdAt: string;
  /** Wall time of the build, 0 when pulled from a remote. */
  buildMs: number;
  /** Bytes of file contents and number of entries in the tree. */
  bytes: number;
  entries: number;
  origin: "built" | "pulled";
}

/** One entry of a tree, as walked in sorted order (see store/walk-tree.ts). */
export type TreeEntry =
  | { kind: "dir"; path: string; mode: number; opaque: boolean }
  | { kind: "file"; path: string; mode: number; size: number; absPath: string }
  | { kind: "symlink"; path: string; target: string }
  | { kind: "whiteout"; path: string }
  | { kind: "device"; path: string; mode: number; type: "char" | "block"; major: number; minor: number }
  | { kind: "fifo"; path: string; mode: number };

/** A private directory on the store's filesystem where one build or pull writes its tree. */
export interface Staging {
  /** The staging directory itself (removed by discard or consumed by commit). */
  readonly dir: string;
  /** Where the tree goes: an overlay upper dir, or an archive's unpack target. */
  readonly tree: string;
  /** An empty overlayfs work dir beside `tree` (same filesystem, as overlayfs requires). */
  readonly work: string;
  /** Remove everything staged. Safe to call twice and after commit. */
  discard(): Promise<void>;
}

export interface CommitMeta {
  name: string;
  buildMs: number;
  origin: KeyRecord["origin"];
  /** When given, the committed tree must have this digest or the commit fails and leaves nothing. */
  expectDigest?: OutputDigest;
  /**
   * The tree's digest as unpackTree({ digest: true }) computed it while writing this staging
   * tree (its result's treeDigest), so commit need not read the tree back. Honoured only for
   * the value unpackTree minted for exactly this tree, once; anything else is ignored.
   */
  treeDigest?: TrustedTreeDigest;
}

/** An output digest computed by the unpacker while it wrote a tree (see store/trusted-digest.ts). */
export interface TrustedTreeDigest {
  readonly digest: OutputDigest;
  /** Bytes of file contents and number of entries, as digestTree counts them. */
  readonly bytes: number;
  readonly entries: number;
  /** The absolute path of the tree it describes. */
  readonly root: string;
}

/** A manifest stored remotely under keys/<LayerKey>. Written only after its blob is verified. */
export interface RemoteManifest {
  key: LayerKey;
  digest: OutputDigest;
  blob: BlobDigest;
  /** Size of the blob in bytes. */
  size: number;
  /**
   * What the blob unpacks to: bytes of file contents and archive entries. Unpacking stops the
   * moment either is exceeded. Absent in manifests written before Castle stated them.
   */
  unpacked?: UnpackedSize;
  name: string;
  created: string;
  castleVersion: string;
  /** "keyname:base64" ed25519 signatures of the manifest's fingerprint (remote/signing.ts). */
  signatures: string[];
  /** Set by lookup, never read from the remote: what the signatures proved. */
  trust?: ManifestTrust;
}

export interface UnpackedSize {
  bytes: number;
  entries: number;
}

/**
 * How far a manifest is trusted: signed by a trusted key (by: its name), signed only by keys
 * the importer was not told to trust (no trusted keys configured), or not signed at all.
 */
export type ManifestTrust =
  | { kind: "signed"; by: string }
  | { kind: "unverified"; signers: string[] }
  | { kind: "unsigned" };

/** Byte-level progress of a transfer, for the UI. */
export interface TransferProgress {
  key: LayerKey;
  name: string;
  bytesDone: number;
  bytesTotal: number;
}

/** What a pass of a build is given by its claim on the store (see StoreClaim). */
export interface WriteGuard {
  /** Awaited before the pass's first write (build, pull, import); throws when the pass must be
   * run again because a prune overtook it. */
  beforeWrite(): Promise<void>;
  /** True once the pass was overtaken: what it still reports is moot. */
  readonly overtaken: boolean;
}

/** A build's claim on the store against a concurrent prune, from its first look-up to its root. */
export interface StoreClaim {
  /** False when a prune was running as the claim began. */
  readonly optimistic: boolean;
  /** Takes the store's lock now (a build that will surely write), waiting for a running prune. */
  hold(): Promise<unknown>;
  /**
   * Runs a build's pass (again, under the lock, when a prune overtook it), records `used` as the
   * system's GC root, and releases the claim. The one way a build uses the store.
   */
  run<T extends { used: KeyRecord[] }>(system: string, pass: (guard: WriteGuard) => Promise<T>): Promise<T>;
  /** Gives the claim up without running anything (e.g. the definition failed to load). */
  release(): Promise<void>;
}

/** The local content-addressed store: trees by digest, records by key, build logs. */
export interface Store {
  /** The store's directory (e.g. ~/.cache/castle). */
  readonly root: string;
  /** The record for a key if it and its tree are present; a damaged record counts as absent. */
  lookup(key: LayerKey): KeyRecord | undefined;
  /** Where the committed tree with this digest lives: ready to be an overlay lower. */
  treePath(digest: OutputDigest): string;
  hasTree(digest: OutputDigest): boolean;
  /** A new staging area on the store's filesystem (so commit is an atomic rename). */
  stage(label: string): Promise<Staging>;
  /** Digests the staged tree, moves it into place and records key → digest, all or nothing. */
  commit(staging: Staging, key: LayerKey, meta: CommitMeta): Promise<KeyRecord>;
  /** Records key → digest for a tree that is already in the store. */
  link(key: LayerKey, digest: OutputDigest, meta: CommitMeta): KeyRecord;
  /** Runs fn holding this process's exclusive lock on key, across processes. */
  withKeyLock<T>(key: LayerKey, fn: () => Promise<T>): Promise<T>;
  /** Where the build log of a key is kept. */
  logPath(key: LayerKey): string;
  /** Where the record of a key is kept. */
  recordPath(key: LayerKey): string;
  /** Where the inputs of the last use of a layer name in a system are noted (for `castle why`);
   * its directory may not exist yet. */
  lastUsePath(system: string, layer: string): string;
  /**
   * The persistent directory of a build cache (a layer's `caches` mount), created on first use,
   * from a copy of a lower tier's cache of that id when the store has lower tiers.
   */
  buildCache(id: string): string;
  /** A directory for a named kind of auxiliary state (e.g. "explain", "sources"), created. */
  dir(kind: string): string;
  /** Every record in the store. */
  records(): KeyRecord[];
  /** Removes staging dirs and temp files left behind by processes that died. */
  removeStaleStaging(): number;
  /** Begins a build's claim on the store, before its first look-up (onWait: a prune holds it). */
  claim(onWait?: () => void): StoreClaim;
}

export interface PullOptions {
  /** Layer name, for progress and messages. */
  name?: string;
  onProgress?: (progress: TransferProgress) => void;
  signal?: AbortSignal;
  /** The key's manifest, when the caller has just looked it up (saves a request). */
  manifest?: RemoteManifest;
}

export interface PushResult {
  /** Bytes of blob uploaded (0 when the blob was already there). */
  uploadedBytes: number;
  /** True when the manifest was already present and nothing was written. */
  skipped: boolean;
}

/**
 * A remote cache. It is only a cache: `pull` resolves undefined when the key is not there, and
 * throws a CastleError (code CASTLE_REMOTE_*) on any fault — unreachable, timeout, auth, bad
 * digest, an untrusted manifest — after discarding whatever it received; callers turn that into a
 * warning and build. The same protocol runs over every kind of remote (S3, an OCI registry, a
 * static HTTP server, a directory): see remote/backend.ts.
 */
export interface Remote {
  /** The remote's URL as the user wrote it, e.g. s3://bucket/prefix. */
  readonly url: string;
  /** False for remotes Castle can only read (plain HTTP). */
  readonly writable: boolean;
  /** The manifest for key, or undefined when the remote does not have it. */
  lookup(key: LayerKey): Promise<RemoteManifest | undefined>;
  /** Downloads, verifies and commits key into the store; undefined when the remote lacks it. */
  pull(key: LayerKey, store: Store, options?: PullOptions): Promise<KeyRecord | undefined>;
  /** Uploads a stored key: its blob unless present, then its manifest, last. */
  push(record: KeyRecord, store: Store, options?: PullOptions): Promise<PushResult>;
  /** Every manifest in the remote that can be used; damaged or untrusted ones go to onSkipped. */
  list(onSkipped?: (key: LayerKey, error: Error & { code: string }) => void): AsyncIterable<RemoteManifest>;
  /** Closes connections. */
  close(): Promise<void>;
}
