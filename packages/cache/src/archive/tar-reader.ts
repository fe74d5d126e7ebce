// Owns parsing a tar stream incrementally: chunks of any size in, one call per entry out, file
// bodies passed through as slices of the incoming chunks (no copies, no per-entry streams). It is
// strict: bad checksums, bad pax records, absurd sizes, data after the end marker and a stream
// that stops early are errors. What entries are allowed is the caller's decision (unpack.ts).

import { CastleError } from "@castle/errors";
import { unsafe } from "./safe-path";
import { BLOCK, type TarHeader, HeaderError, decodeHeader, decodePax, isZeroBlock, padding } from "./tar-header";

/** Receives an entry's body bytes, in order, then end(). */
export interface BodySink {
  write(chunk: Buffer, start: number, end: number): void;
  end(): void;
}

/** Called once per entry with pax records applied; returns where a file's body goes. */
export type EntryHandler = (header: TarHeader) => BodySink | undefined;

export interface TarLimits {
  /** Largest body of one entry, in bytes. Default 64 GiB. */
  maxEntryBytes?: number;
  /** Largest pax extended header, in bytes. Default 1 MiB. */
  maxPaxBytes?: number;
}

type State = "header" | "pax" | "body" | "skip" | "end";

export class TarReader {
  private state: State = "header";
  private readonly block = Buffer.alloc(BLOCK);
  private blockFill = 0;
  private left = 0;
  private pad = 0;
  private sink: BodySink | undefined;
  private pax: Buffer | undefined;
  private paxFill = 0;
  private overrides: Map<string, string> | undefined;
  private zeroBlocks = 0;
  private readonly maxEntry: number;
  private readonly maxPax: number;

  constructor(private readonly onEntry: EntryHandler, limits: TarLimits = {}) {
    this.maxEntry = limits.maxEntryBytes ?? 64 * 2 ** 30;
    this.maxPax = limits.maxPaxBytes ?? 1 << 20;
  }

  /** Feeds the next bytes of the (decompressed) archive. */
  push(chunk: Buffer): void {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.left > 0) {
        const take = Math.min(this.left, n - i);
        if (this.state === "body") this.sink?.write(chunk, i, i + take);
        else if (this.state === "pax") {
          chunk.copy(this.pax as Buffer, this.paxFill, i, i + take);
          this.paxFill += take;
        }
        i += take;
        this.left -= take;
        if (this.left === 0) this.finishBody();
        continue;
      }
      if (this.pad > 0) {
        const take = Math.min(this.pad, n - i);
        i += take;
        this.pad -= take;
        continue;
      }
      const take = Math.min(BLOCK - this.blockFill, n - i);
      chunk.copy(this.block, this.blockFill, i, i + take);
      this.blockFill += take;
      i += take;
      if (this.blockFill === BLOCK) {
        this.blockFill = 0;
        this.onBlock();
      }
    }
  }

  /** Declares the input complete; throws when the archive was cut short. */
  end(): void {
    if (this.state !== "end" || this.blockFill !== 0 || this.left > 0) {
      throw corrupt("the archive is truncated (it ends before its end-of-archive marker)");
    }
  }

  /** True once the end-of-archive marker was read. */
  get ended(): boolean {
    return this.state === "end";
  }

  private onBlock(): void {
    const zero = isZeroBlock(this.block);
    if (this.state === "end") {
      if (!zero) throw corrupt("the archive has data after its end-of-archive marker");
      return;
    }
    if (zero) {
      if (this.overrides) throw corrupt("the archive ends after a pax header");
      if (++this.zeroBlocks === 2) this.state = "end";
      return;
    }
    if (this.zeroBlocks > 0) throw corrupt("the archive has an entry after an empty block");
    let header: TarHeader;
    try {
      header = decodeHeader(this.block);
    } catch (error) {
      if (error instanceof HeaderError) throw corrupt(error.message);
      throw error;
    }
    if (header.type === "pax") {
      if (header.size > this.maxPax) throw unsafe(header.name, `has a ${header.size}-byte pax header`);
      this.state = "pax";
      this.pax = Buffer.alloc(header.size);
      this.paxFill = 0;
      this.startBody(header.size);
      return;
    }
    if (this.overrides) {
      applyPax(header, this.overrides);
      this.overrides = undefined;
    }
    if (header.size > this.maxEntry) throw unsafe(header.name, `claims an absurd size (${header.size} bytes)`);
    if (header.type !== "file" && header.type !== "other" && header.size !== 0) {
      throw corrupt(`entry ${JSON.stringify(header.name)} is not a file but has a body`);
    }
    const sink = this.onEntry(header);
    this.state = "body";
    this.sink = sink;
    this.startBody(header.size);
  }

  private startBody(size: number): void {
    this.left = size;
    this.pad = padding(size);
    if (size === 0) this.finishBody();
  }

  private finishBody(): void {
    if (this.state === "pax") {
      try {
        this.overrides = new Map([...(this.overrides ?? []), ...decodePax(this.pax as Buffer)]);
      } catch (error) {
        if (error instanceof HeaderError) throw corrupt(error.message);
        throw error;
      }
      this.pax = undefined;
    } else {
      this.sink?.end();
      this.sink = undefined;
    }
    this.state = "header";
  }
}

function applyPax(header: TarHeader, pax: Map<string, string>): void {
  const path = pax.get("path");
  if (path !== undefined) header.name = path;
  const link = pax.get("linkpath");
  if (link !== undefined) header.linkname = link;
  const size = pax.get("size");
  if (size !== undefined) {
    if (!/^[0-9]{1,16}$/.test(size) || !Number.isSafeInteger(Number(size))) {
      throw corrupt(`entry ${JSON.stringify(header.name)} has a bad pax size`);
    }
    header.size = Number(size);
  }
}

function corrupt(message: string): CastleError {
  return new CastleError("CASTLE_ARCHIVE_CORRUPT", message, {
    hint: "the archive is damaged or was not made by Castle; nothing was kept",
  });
}
