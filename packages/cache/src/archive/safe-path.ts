// Owns deciding whether an archive entry's name is one Castle may write: relative, canonical,
// inside the root, of sane length, and what overlayfs whiteout (OCI `.wh.`) it stands for.
// Names are checked as strings here; unpack.ts checks that every parent is a directory it made.

import { CastleError } from "@castle/errors";

/** Linux's PATH_MAX and NAME_MAX, in bytes. */
export const MAX_PATH_BYTES = 4095;
export const MAX_NAME_BYTES = 255;

/** The OCI prefix of a whiteout entry and the name of an opaque-directory marker. */
export const WHITEOUT_PREFIX = ".wh.";
export const OPAQUE_MARKER = ".wh..wh..opq";

/**
 * The canonical relative path of an entry name (a directory's trailing slash dropped), or a
 * CastleError: CASTLE_ARCHIVE_UNSAFE for names that leave the root (absolute, `..`), and
 * CASTLE_ARCHIVE_CORRUPT for names no Castle archive holds (empty, `.` or empty components, NUL).
 */
export function checkEntryPath(name: string): string {
  const path = name.endsWith("/") ? name.slice(0, -1) : name;
  if (name.startsWith("/")) throw unsafe(name, "is an absolute path");
  if (path === "" || path.includes("\0")) throw corrupt(name, "is not a valid path");
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) throw unsafe(name, `is longer than ${MAX_PATH_BYTES} bytes`);
  for (const part of path.split("/")) {
    if (part === "..") throw unsafe(name, "climbs out of the root with `..`");
    if (part === "" || part === ".") throw corrupt(name, "is not a canonical path");
    if (Buffer.byteLength(part) > MAX_NAME_BYTES) throw unsafe(name, `has a component longer than ${MAX_NAME_BYTES} bytes`);
  }
  return path;
}

/** What an entry path means for overlayfs: a plain entry, a whiteout of a sibling, an opaque mark. */
export type OverlayMeaning =
  | { kind: "plain" }
  | { kind: "whiteout"; target: string }
  | { kind: "opaque"; dir: string };

/** Interprets the last component of a canonical path in the OCI whiteout convention. */
export function overlayMeaning(path: string): OverlayMeaning {
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "" : path.slice(0, slash);
  const base = path.slice(slash + 1);
  if (!base.startsWith(WHITEOUT_PREFIX)) return { kind: "plain" };
  if (base === OPAQUE_MARKER) return { kind: "opaque", dir };
  const name = base.slice(WHITEOUT_PREFIX.length);
  if (name === "" || name === "." || name === ".." || name.startsWith(WHITEOUT_PREFIX)) {
    throw corrupt(path, "is not a valid whiteout");
  }
  return { kind: "whiteout", target: dir === "" ? name : `${dir}/${name}` };
}

/** The directory part of a canonical path ("" for the root). */
export function parentOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash < 0 ? "" : path.slice(0, slash);
}

export function unsafe(entry: string, why: string): CastleError {
  return new CastleError("CASTLE_ARCHIVE_UNSAFE", `refusing archive entry ${JSON.stringify(entry)}: it ${why}`, {
    data: { entry },
    hint: "the archive was not made by Castle or was tampered with; nothing was kept",
  });
}

export function corrupt(entry: string, why: string): CastleError {
  return new CastleError("CASTLE_ARCHIVE_CORRUPT", `archive entry ${JSON.stringify(entry)} ${why}`, {
    data: { entry },
    hint: "the archive is damaged or was not made by Castle; nothing was kept",
  });
}
