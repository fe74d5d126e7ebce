// Owns decoding tar headers strictly on the way in: ustar blocks with their checksum and magic
// checked, and pax records. What Castle writes (owners 0/0, no user or group names, mtime 0, pax
// records only for long names, long link targets and huge sizes) is encoded by native/pack.c.

export const BLOCK = 512;

export type TarType = "file" | "dir" | "symlink" | "pax" | "other";

/** A decoded header: name and link as written (pax records already applied by the reader). */
export interface TarHeader {
  name: string;
  mode: number;
  size: number;
  type: TarType;
  /** The raw typeflag character, for messages about types Castle refuses. */
  typeflag: string;
  linkname: string;
}

/** size rounded up to whole blocks (arithmetic, not bit masks: sizes pass 2 GiB). */
export function roundUp(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

/** Bytes of zero padding after a body of this size. */
export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** Why a header block was refused: the reader turns this into CASTLE_ARCHIVE_CORRUPT. */
export class HeaderError extends Error {}

/** True when the 512 bytes at offset are all zero (end-of-archive marker). */
export function isZeroBlock(block: Buffer, offset = 0): boolean {
  for (let i = offset; i < offset + BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/** Decodes one header block, checking its checksum and magic. */
export function decodeHeader(block: Buffer, offset = 0): TarHeader {
  const stored = readOctal(block, offset + 148, 8, "checksum");
  // The checksum counts its own field as eight spaces.
  let sum = 8 * 0x20;
  for (let i = offset; i < offset + 148; i++) sum += block[i] as number;
  for (let i = offset + 156; i < offset + BLOCK; i++) sum += block[i] as number;
  if (sum !== stored) throw new HeaderError("a header's checksum does not match (not a tar archive, or damaged)");
  const magic = block.toString("latin1", offset + 257, offset + 263);
  if (magic !== "ustar\u0000" && magic !== "ustar ") throw new HeaderError("a header is not in ustar format");
  const flag = block[offset + 156] as number;
  const typeflag = flag === 0 ? "0" : String.fromCharCode(flag);
  const type: TarType =
    typeflag === "0" || typeflag === "7" ? "file"
    : typeflag === "5" ? "dir"
    : typeflag === "2" ? "symlink"
    : typeflag === "x" ? "pax"
    : "other";
  let name = cString(block, offset, 100);
  const prefix = magic === "ustar\u0000" ? cString(block, offset + 345, 155) : "";
  if (prefix) name = `${prefix}/${name}`;
  return {
    name,
    mode: readOctal(block, offset + 100, 8, "mode"),
    size: readOctal(block, offset + 124, 12, "size"),
    type,
    typeflag,
    linkname: cString(block, offset + 157, 100),
  };
}

function cString(block: Buffer, at: number, width: number): string {
  const end = block.indexOf(0, at);
  return block.toString("utf8", at, end < 0 || end > at + width ? at + width : end);
}

/** An octal field: optional leading spaces, octal digits, then only NULs and spaces (all of it
 * blank is 0). Parsed from the bytes: no string per field. */
function readOctal(block: Buffer, at: number, width: number, what: string): number {
  if (((block[at] as number) & 0x80) !== 0) throw new HeaderError(`a header's ${what} uses base-256, which Castle never writes`);
  const end = at + width;
  let i = at;
  while (i < end && block[i] === 0x20) i++;
  let value = 0;
  for (; i < end; i++) {
    const c = block[i] as number;
    if (c < 0x30 || c > 0x37) break;
    value = value * 8 + (c - 0x30);
  }
  for (; i < end; i++) {
    const c = block[i] as number;
    if (c !== 0 && c !== 0x20) throw new HeaderError(`a header's ${what} field is not octal`);
  }
  return value;
}

/** Parses a pax extended header body into key → value; malformed records are an error. */
export function decodePax(body: Buffer): Map<string, string> {
  const records = new Map<string, string>();
  let at = 0;
  while (at < body.length) {
    const space = body.indexOf(0x20, at);
    if (space < 0) throw new HeaderError("a pax record has no length");
    const length = Number(body.toString("latin1", at, space));
    if (!Number.isSafeInteger(length) || length <= space - at + 1 || at + length > body.length) {
      throw new HeaderError("a pax record has a bad length");
    }
    const record = body.toString("utf8", space + 1, at + length - 1);
    if (body[at + length - 1] !== 0x0a) throw new HeaderError("a pax record does not end with a newline");
    const eq = record.indexOf("=");
    if (eq <= 0) throw new HeaderError("a pax record has no key");
    records.set(record.slice(0, eq), record.slice(eq + 1));
    at += length;
  }
  return records;
}
