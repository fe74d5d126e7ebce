// Owns the table of Castle's settings: every key the configuration file may hold, with its kind,
// its environment variable, its command-line flag (when it has one), its default and one line of
// help. Adding a setting is one line here; load-config.ts reads the file, the environment and the
// flags for every row, and `castle config` prints them all.

export type SettingKind =
  /** A list of strings: a JSON array in the file; whitespace- or comma-separated in the environment. */
  | "list"
  /** A list whose entries may contain commas: whitespace-separated in the environment. */
  | "words"
  | "string"
  /** A file path: "~/" is the home directory; relative paths in the file are relative to it. */
  | "path"
  /** A non-negative number. */
  | "number";

export interface Setting {
  kind: SettingKind;
  /** The environment variable that sets it. */
  env: string;
  /** The long flag that sets it, without dashes. */
  flag?: string;
  default?: string | number | readonly string[];
  doc: string;
}

export const SETTINGS = {
  "cache.import": { kind: "list", env: "CASTLE_IMPORT_CACHE", flag: "import-cache", default: [], doc: "remote caches to pull layers from, tried in order" },
  "cache.export": { kind: "string", env: "CASTLE_EXPORT_CACHE", flag: "export-cache", doc: "the remote cache every built layer is pushed to" },
  "cache.trustedKeys": { kind: "list", env: "CASTLE_TRUSTED_KEYS", flag: "trusted-key", default: [], doc: "public keys (name:base64); when set, only manifests one of them signed are pulled" },
  "cache.signingKey": { kind: "path", env: "CASTLE_SIGNING_KEY", flag: "signing-key", doc: "secret key file (castle cache keygen) that signs every exported manifest" },
  "cache.insecureRegistries": { kind: "list", env: "CASTLE_INSECURE_REGISTRIES", default: [], doc: "OCI registries (host:port) reached over plain HTTP (loopback always is)" },
  "sources.mirrors": { kind: "words", env: "CASTLE_MIRRORS", default: [], doc: "mirrors tried first for http sources (a base URL or directory, or prefix=replacement)" },
  "transfer.minBytesPerSecond": { kind: "number", env: "CASTLE_TRANSFER_MIN_RATE", default: 100_000, doc: "a pull slower than this over a window is abandoned (the layer is built locally)" },
  "transfer.windowSeconds": { kind: "number", env: "CASTLE_TRANSFER_WINDOW", default: 20, doc: "the window the minimum rate is measured over" },
  "transfer.deadlineSeconds": { kind: "number", env: "CASTLE_TRANSFER_DEADLINE", default: 60, doc: "every pull may take this long, plus the time per MB below" },
  "transfer.deadlineSecondsPerMB": { kind: "number", env: "CASTLE_TRANSFER_DEADLINE_PER_MB", default: 20, doc: "added to a pull's deadline per MB of its blob" },
} as const satisfies Record<string, Setting>;

export type SettingKey = keyof typeof SETTINGS;

/** The value a setting of each kind holds once resolved. */
export type SettingValue<K extends SettingKey> = (typeof SETTINGS)[K]["kind"] extends "list" | "words"
  ? string[]
  : (typeof SETTINGS)[K]["kind"] extends "number"
    ? number
    : string;
