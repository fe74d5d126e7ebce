// Owns the closed catalogue of error codes: every code Castle can fail with, the exit status the
// CLI gives it, and what it means in one line. The code type is derived from this table, so a
// code that is not listed here does not compile. `castle --help` and the README print the
// statuses; a test walks the whole table.

/** Exit statuses scripts can rely on (the README's table). */
export const EXIT_STATUS = {
  ok: 0,
  /** A layer failed to build (or Castle itself failed: an internal error). */
  buildFailed: 1,
  usage: 2,
  definition: 3,
  fetch: 4,
  cache: 5,
  noInstance: 6,
  sandbox: 125,
  notExecutable: 126,
  notFound: 127,
  /** 128 + SIGINT; a cancellation by another signal exits 128 + that signal's number. */
  interrupted: 130,
} as const;

export type ExitStatus = (typeof EXIT_STATUS)[keyof typeof EXIT_STATUS];

interface CatalogueEntry {
  exit: ExitStatus;
  meaning: string;
}

const S = EXIT_STATUS;

export const ERROR_CATALOGUE = {
  // A build
  CASTLE_BUILD_FAILED: { exit: S.buildFailed, meaning: "a layer's build failed (its script exited non-zero, or the build could not finish)" },
  CASTLE_BUILD_SKIPPED: { exit: S.buildFailed, meaning: "a layer was not built because another layer failed first" },
  CASTLE_INSTALL: { exit: S.buildFailed, meaning: "Castle's own installation is incomplete (a file it ships is missing)" },

  // The command line
  CASTLE_USAGE: { exit: S.usage, meaning: "the command line is wrong (unknown command or option, bad value)" },
  CASTLE_CONFIG_INVALID: { exit: S.usage, meaning: "the configuration file, or a setting's environment variable, is not valid" },
  CASTLE_KEY_INVALID: { exit: S.usage, meaning: "a signing key or trusted key is malformed or cannot be read" },
  CASTLE_KEY_EXISTS: { exit: S.usage, meaning: "castle cache keygen would replace a key that exists" },
  CASTLE_INSTANCE_BUSY: { exit: S.usage, meaning: "the system is already running (one persistent instance at a time)" },
  CASTLE_RUN_NOT_FOUND: { exit: S.usage, meaning: "no recorded run matches what was asked (castle why --run, castle log, castle history)" },

  // The definition
  CASTLE_DEFINITION: { exit: S.definition, meaning: "a call in the definition has a bad option, name or path" },
  CASTLE_DEFINITION_MISSING: { exit: S.definition, meaning: "no castle.ts where the definition was looked for" },
  CASTLE_DEFINITION_SYNTAX: { exit: S.definition, meaning: "the definition does not compile" },
  CASTLE_DEFINITION_ERROR: { exit: S.definition, meaning: "the definition threw while it was evaluated" },
  CASTLE_DEFINITION_EXPORT: { exit: S.definition, meaning: "the definition does not export a system as its default" },
  CASTLE_CYCLE: { exit: S.definition, meaning: "the layers' dependencies form a cycle" },
  CASTLE_MISSING_DEPENDENCY: { exit: S.definition, meaning: "a layer depends on a layer name the system does not declare" },
  CASTLE_DUPLICATE_LAYER: { exit: S.definition, meaning: "two different layers share one name" },
  CASTLE_DUPLICATE_SOURCE: { exit: S.definition, meaning: "two different sources share one name" },
  CASTLE_MOUNT_OVERLAP: { exit: S.definition, meaning: "a layer's mount paths overlap" },
  CASTLE_TOO_MANY_LAYERS: { exit: S.definition, meaning: "a root composes more layers than overlayfs can stack" },
  CASTLE_OVERRIDE_UNKNOWN: { exit: S.definition, meaning: "an override names a source the system does not have" },

  // Sources and the definition repository
  CASTLE_FETCH_FAILED: { exit: S.fetch, meaning: "a source or the definition repository could not be downloaded" },
  CASTLE_CHECKSUM_MISMATCH: { exit: S.fetch, meaning: "a downloaded source does not have its pinned sha256" },
  CASTLE_GIT_REF_MISSING: { exit: S.fetch, meaning: "a git branch or tag does not exist in the repository" },
  CASTLE_GIT_COMMIT_MISSING: { exit: S.fetch, meaning: "a pinned git commit does not exist in the repository" },
  CASTLE_GIT_SUBDIR_MISSING: { exit: S.fetch, meaning: "a git source's subdirectory does not exist at its commit" },
  CASTLE_REPO_NOT_CACHED: { exit: S.fetch, meaning: "--offline, but the definition repository was never fetched" },
  CASTLE_OVERRIDE_MISSING: { exit: S.fetch, meaning: "an override points at a directory that does not exist" },
  CASTLE_SOURCE_MISSING: { exit: S.fetch, meaning: "a local source's directory does not exist" },
  CASTLE_SOURCE_INVALID: { exit: S.fetch, meaning: "a source's files cannot be used (bad path, bad type)" },
  CASTLE_SOURCE_CHANGED: { exit: S.fetch, meaning: "a local source changed while Castle was reading or building with it" },
  CASTLE_SOURCE_IO: { exit: S.fetch, meaning: "a source could not be read or stored" },
  CASTLE_EXTRACT_FAILED: { exit: S.fetch, meaning: "a source archive could not be unpacked" },
  CASTLE_MISSING_TOOL: { exit: S.fetch, meaning: "a program needed to unpack a source (xz, bzip2, zstd) is not installed" },
  CASTLE_ARCHIVE_UNSAFE: { exit: S.fetch, meaning: "an archive holds an entry that escapes its root or is not allowed" },

  // The local store and remote caches
  CASTLE_CACHE_IO: { exit: S.cache, meaning: "the local store could not be read or written (disk full, permissions)" },
  CASTLE_CACHE_LOCK: { exit: S.cache, meaning: "a lock in the local store could not be taken" },
  CASTLE_CACHE_MISSING_TOOL: { exit: S.cache, meaning: "the store's helper program is missing" },
  CASTLE_CACHE_MISSING_TREE: { exit: S.cache, meaning: "a layer's record names a tree that is not in the store" },
  CASTLE_DIR_UNUSABLE: { exit: S.cache, meaning: "one of Castle's own directories (store, state, data) cannot be made: HOME missing or not the user's" },
  CASTLE_CACHE_NO_SPACE: { exit: S.cache, meaning: "a layer to pull states an unpacked size larger than the store's free space" },
  CASTLE_LOG_MISSING: { exit: S.cache, meaning: "a layer's build log is not in the store (pruned, or the layer was never built here)" },
  CASTLE_STORE_PRUNED: { exit: S.cache, meaning: "a cache prune ran while a build looked up its layers (the build retries)" },
  CASTLE_DIGEST_MISMATCH: { exit: S.cache, meaning: "a tree or blob does not have the digest it should" },
  CASTLE_ARCHIVE_CORRUPT: { exit: S.cache, meaning: "a layer archive is damaged or truncated" },
  CASTLE_ARCHIVE_IO: { exit: S.cache, meaning: "a layer archive could not be read or written" },
  CASTLE_ARCHIVE_NO_ZSTD: { exit: S.cache, meaning: "the zstd program is needed for layer archives and is not installed" },
  CASTLE_ARCHIVE_TARGET: { exit: S.cache, meaning: "an archive cannot be unpacked where it was asked to go" },
  CASTLE_ARCHIVE_UNSUPPORTED: { exit: S.cache, meaning: "a tree holds a file type layer archives cannot carry" },
  CASTLE_REMOTE_URL: { exit: S.cache, meaning: "a remote cache's URL is not one Castle understands" },
  CASTLE_REMOTE_KEY: { exit: S.cache, meaning: "a remote cache was asked for a malformed layer key" },
  CASTLE_REMOTE_UNREACHABLE: { exit: S.cache, meaning: "a remote cache cannot be reached" },
  CASTLE_REMOTE_TIMEOUT: { exit: S.cache, meaning: "a remote cache did not answer in time" },
  CASTLE_REMOTE_AUTH: { exit: S.cache, meaning: "a remote cache refused Castle's credentials" },
  CASTLE_REMOTE_CORRUPT: { exit: S.cache, meaning: "a remote cache holds a bad copy of a layer" },
  CASTLE_REMOTE_UNTRUSTED: { exit: S.cache, meaning: "a remote manifest is unsigned, badly signed or signed by an untrusted key, and trusted keys are configured" },
  CASTLE_REMOTE_UNSIGNED: { exit: S.cache, meaning: "layers were pulled unsigned, with no trusted keys configured (a warning's code)" },
  CASTLE_REMOTE_UNSUPPORTED: { exit: S.cache, meaning: "a remote cache cannot do what was asked (an HTTP remote is read-only and cannot be listed)" },
  CASTLE_REMOTE_ERROR: { exit: S.cache, meaning: "a remote cache failed in another way" },
  CASTLE_REMOTE_PRUNE: { exit: S.cache, meaning: "a remote cache could not be pruned" },

  // Running instances
  CASTLE_INSTANCE_NOT_FOUND: { exit: S.noInstance, meaning: "no running instance has that id" },

  // The sandbox
  CASTLE_SANDBOX_SETUP: { exit: S.sandbox, meaning: "the sandbox could not be set up (namespaces, mounts)" },
  CASTLE_SANDBOX_SPEC: { exit: S.sandbox, meaning: "the sandbox was given an invalid spec" },
  CASTLE_SANDBOX_ENTER: { exit: S.sandbox, meaning: "a running sandbox could not be entered" },
  CASTLE_SANDBOX_MISSING_HELPER: { exit: S.sandbox, meaning: "the sandbox helper program is missing or not executable" },
  CASTLE_SANDBOX_NOT_EXECUTABLE: { exit: S.notExecutable, meaning: "the command is not executable in the system" },
  CASTLE_SANDBOX_NOT_FOUND: { exit: S.notFound, meaning: "the command was not found in the system" },

  // Stopping
  CASTLE_CANCELLED: { exit: S.interrupted, meaning: "the work was cancelled (a signal, or the caller gave up)" },
} as const satisfies Record<`CASTLE_${string}`, CatalogueEntry>;

export type CastleErrorCode = keyof typeof ERROR_CATALOGUE;

/** True when a string is a code of this catalogue. */
export function isErrorCode(code: string): code is CastleErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_CATALOGUE, code);
}
