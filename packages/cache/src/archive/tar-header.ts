// Owns the bytes of tar headers: encoding the deterministic POSIX (ustar + pax) headers Castle
// writes, and decoding headers strictly on the way in. Castle writes tar itself rather than through
// tar-stream's per-entry streams, which cost ~100 µs an entry; the format is small and fixed:
// owners 0/0, empty user and group names, mtime 0, pax records only for long names, long link
// targets and huge sizes.

export const BLOCK = 512;
/** Largest size the 11 octal digits of a ustar size field hold (8 GiB - 1). */
const MAX_OCTAL_SIZE = 0o77777777777;

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

const TYPEFLAG: Record<Exclude<TarType, "other">, number> = {
  file: 0x30, // '0'
  dir: 0x35, // '5'
  symlink: 0x32, // '2'
  pax: 0x78, // 'x'
};

/** Writes the header(s) of one entry into out at offset; returns the bytes written. */
export function encodeHeader(
  out: Buffer, offset: number, entry: { name: string; mode: number; size: number; type: "file" | "dir" | "symlink"; linkname?: string },
): number {
  const pax: string[] = [];
  const nameBytes = Buffer.byteLength(entry.name);
  const linkBytes = entry.linkname ? Buffer.byteLength(entry.linkname) : 0;
  if (nameBytes > 100) pax.push(paxRecord("path", entry.name));
  if (linkBytes > 100) pax.push(paxRecord("linkpath", entry.linkname ?? ""));
  if (entry.size > MAX_OCTAL_SIZE) pax.push(paxRecord("size", String(entry.size)));
  let written = 0;
  if (pax.length > 0) {
    const body = Buffer.from(pax.join(""));
    writeBlock(out, offset, "././@PaxHeader", 0o644, body.length, TYPEFLAG.pax, "");
    body.copy(out, offset + BLOCK);
    const padded = BLOCK + roundUp(body.length);
    out.fill(0, offset + BLOCK + body.length, offset + padded);
    written = padded;
  }
  writeBlock(
    out, offset + written,
    nameBytes > 100 ? truncateUtf8(entry.name, 100) : entry.name,
    entry.mode, entry.size > MAX_OCTAL_SIZE ? 0 : entry.size, TYPEFLAG[entry.type],
    linkBytes > 100 ? truncateUtf8(entry.linkname ?? "", 100) : entry.linkname ?? "",
  );
  return written + BLOCK;
}

/** An upper bound on the bytes encodeHeader writes for these names. */
export function headerSpace(name: string, linkname = ""): number {
  const long = Buffer.byteLength(name) > 100 || Buffer.byteLength(linkname) > 100;
  return long ? 2 * BLOCK + roundUp(Buffer.byteLength(name) + Buffer.byteLength(linkname) + 64) : BLOCK;
}

function writeBlock(out: Buffer, at: number, name: string, mode: number, size: number, typeflag: number, link: string): void {
  out.fill(0, at, at + BLOCK);
  out.write(name, at, 100, "utf8");
  octal(out, at + 100, 8, mode & 0o7777);
  octal(out, at + 108, 8, 0); // uid
  octal(out, at + 116, 8, 0); // gid
  octal(out, at + 124, 12, size);
  octal(out, at + 136, 12, 0); // mtime
  out.fill(0x20, at + 148, at + 156); // checksum is computed with spaces here
  out[at + 156] = typeflag;
  if (link) out.write(link, at + 157, 100, "utf8");
  out.write("ustar\u000000", at + 257, 8, "latin1");
  octal(out, at + 329, 8, 0); // devmajor
  octal(out, at + 337, 8, 0); // devminor
  let sum = 0;
  for (let i = at; i < at + BLOCK; i++) sum += out[i] as number;
  out.write(sum.toString(8).padStart(6, "0"), at + 148, 6, "latin1");
  out[at + 154] = 0;
  out[at + 155] = 0x20;
}

function octal(out: Buffer, at: number, width: number, value: number): void {
  out.write(value.toString(8).padStart(width - 1, "0"), at, width - 1, "latin1");
  out[at + width - 1] = 0;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyBytes = Buffer.byteLength(body);
  let length = bodyBytes + String(bodyBytes).length;
  if (String(length).length + bodyBytes !== length) length = String(length + 1).length + bodyBytes;
  return `${length}${body}`;
}

function truncateUtf8(text: string, bytes: number): string {
  const buf = Buffer.from(text).subarray(0, bytes);
  return buf.toString("utf8").replace(/\uFFFD+$/, "");
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
