// Test helper: writes tar archives byte by byte — including every kind of entry Castle's packer
// never writes (hardlinks, devices, GNU long names, global pax headers, escaping paths, absurd
// sizes) — and takes archives apart again into their header blocks, so a fuzzer can mutate
// fields and fix up the checksum to get past the first check.

export const BLOCK = 512;

export interface CraftEntry {
  name: string;
  /** Typeflag character: "0" file, "1" hardlink, "2" symlink, "3" char, "4" block, "5" dir,
   * "6" fifo, "x" pax, "g" global pax, "L" GNU long name... Default "0". */
  type?: string;
  mode?: number;
  /** The body; size defaults to its length. */
  body?: Buffer | string;
  /** Overrides the size field (a lie about the body). */
  size?: number;
  /** Raw size field text (e.g. base-256 bytes), overriding size. */
  rawSize?: Buffer;
  linkname?: string;
  /** ustar prefix field. */
  prefix?: string;
  /** Magic + version (default "ustar\0" + "00"). */
  magic?: string;
  /** Pax records written in an "x" header before this entry. */
  pax?: Record<string, string>;
  /** Store a wrong checksum. */
  badChecksum?: boolean;
}

function field(out: Buffer, at: number, width: number, text: string): void {
  Buffer.from(text, "utf8").copy(out, at, 0, width);
}

function octal(out: Buffer, at: number, width: number, value: number): void {
  field(out, at, width, value.toString(8).padStart(width - 1, "0").slice(-(width - 1)));
}

/** Writes one header block; returns it. */
export function headerBlock(entry: CraftEntry, size: number): Buffer {
  const block = Buffer.alloc(BLOCK);
  field(block, 0, 100, entry.name);
  octal(block, 100, 8, entry.mode ?? (entry.type === "5" ? 0o755 : 0o644));
  octal(block, 108, 8, 0);
  octal(block, 116, 8, 0);
  if (entry.rawSize) entry.rawSize.copy(block, 124, 0, 12);
  else octal(block, 124, 12, entry.size ?? size);
  octal(block, 136, 12, 0);
  block[156] = (entry.type ?? "0").charCodeAt(0);
  field(block, 157, 100, entry.linkname ?? "");
  Buffer.from(entry.magic ?? "ustar\u000000", "latin1").copy(block, 257, 0, 8);
  octal(block, 329, 8, 0);
  octal(block, 337, 8, 0);
  if (entry.prefix) field(block, 345, 155, entry.prefix);
  fixChecksum(block, 0);
  if (entry.badChecksum) block[148] = block[148] === 0x30 ? 0x31 : 0x30;
  return block;
}

/** Recomputes the checksum of the header block at offset, in place. */
export function fixChecksum(buf: Buffer, offset: number): void {
  buf.fill(0x20, offset + 148, offset + 156);
  let sum = 0;
  for (let i = offset; i < offset + BLOCK; i++) sum += buf[i] as number;
  buf.write(sum.toString(8).padStart(6, "0"), offset + 148, 6, "latin1");
  buf[offset + 154] = 0;
  buf[offset + 155] = 0x20;
}

export function paxBody(records: Record<string, string>): Buffer {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(records)) {
    const body = ` ${key}=${value}\n`;
    const bytes = Buffer.byteLength(body);
    let length = bytes + String(bytes).length;
    if (String(length).length + bytes !== length) length = String(length + 1).length + bytes;
    parts.push(`${length}${body}`);
  }
  return Buffer.from(parts.join(""));
}

function padded(body: Buffer): Buffer {
  const pad = (BLOCK - (body.length % BLOCK)) % BLOCK;
  return pad === 0 ? body : Buffer.concat([body, Buffer.alloc(pad)]);
}

/** The bytes of one entry (its pax header first, if any). */
export function entryBytes(entry: CraftEntry): Buffer {
  const parts: Buffer[] = [];
  if (entry.pax) {
    const body = paxBody(entry.pax);
    parts.push(headerBlock({ name: "././@PaxHeader", type: "x" }, body.length), padded(body));
  }
  const body = typeof entry.body === "string" ? Buffer.from(entry.body) : entry.body ?? Buffer.alloc(0);
  parts.push(headerBlock(entry, body.length));
  if (body.length > 0) parts.push(padded(body));
  return Buffer.concat(parts);
}

/** A whole archive: the entries, then the two zero blocks that end it (unless `end` is false). */
export function craftTar(entries: CraftEntry[], options: { end?: boolean } = {}): Buffer {
  const parts = entries.map(entryBytes);
  if (options.end !== false) parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

/** Where each member (header + body, pax header included) starts and ends in a raw tar. */
export interface Member {
  start: number;
  /** Offset of the main header block (after any pax header). */
  header: number;
  end: number;
}

/** Splits a well-formed raw tar into its members (stops at the end marker or at damage). */
export function members(tar: Buffer): Member[] {
  const out: Member[] = [];
  let at = 0;
  let start = 0;
  while (at + BLOCK <= tar.length) {
    if (tar.subarray(at, at + BLOCK).every((b) => b === 0)) break;
    const sizeText = tar.toString("latin1", at + 124, at + 136).replace(/[\0 ]+$/, "");
    const size = /^[0-7]+$/.test(sizeText) ? parseInt(sizeText, 8) : 0;
    const type = String.fromCharCode(tar[at + 156] as number);
    const next = at + BLOCK + Math.ceil(size / BLOCK) * BLOCK;
    if (type === "x") {
      at = next;
      continue;
    }
    out.push({ start, header: at, end: next });
    at = next;
    start = next;
  }
  return out;
}
