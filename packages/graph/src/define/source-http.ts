// Owns `source.http()`: an archive or file fetched over http(s), pinned by sha256, with mirrors.

import { SOURCE_BRAND, type Source } from "../types";
import { checkKnownOptions, checkName, checkStrings, optionNames } from "./checks";
import { DefinitionError } from "./errors";
import { captureSite, withSite } from "./site";
import type { SiteRef } from "./site";

export interface HttpSourceOptions {
  /** Where the file is published. */
  url: string;
  /** sha256 of the file's bytes (hex). A download with another digest is refused. */
  sha256: string;
  /** Other URLs with the same bytes, tried in order after `url`. Default []. User-level
   * mirrors (CASTLE_MIRRORS) are tried before all of these. */
  mirrors?: string[];
  /** Name for overrides (CASTLE_OVERRIDE_<name>). Default: the file name without version/extension. */
  name?: string;
  /** Unpack the archive (tar, tar.gz, tar.bz2, tar.xz, tar.zst; a Debian .deb unpacks as its
   * data.tar member). Default: true for the tar names, false for anything else (.deb included). */
  extract?: boolean;
  /** Leading path components to drop when unpacking. Default 1 (the usual `pkg-1.0/` top dir). */
  strip?: number;
}

const HTTP_OPTIONS = optionNames<HttpSourceOptions>()(["url", "sha256", "mirrors", "name", "extract", "strip"]);

const ARCHIVE = /\.(tar|tgz|tbz2?|txz|tar\.(gz|bz2|xz|zst|lz|lzma))$/;

/**
 * A file fetched over http(s) and pinned by its sha256. Archives are unpacked into a directory
 * (dropping `strip` leading components); other files are placed in a directory by their name.
 *
 * @example
 * const muslSrc = source.http({
 *   name: "musl-src",
 *   url: "https://example.org/musl-1.2.3.tar.gz",
 *   sha256: "7d5b0b6062521e4627e099e4c9dc8248d32a30285e959b7eecaa780cf8cfd4a4",
 * });
 */
export function httpSource(options: HttpSourceOptions): Source {
  const site = captureSite();
  checkKnownOptions(options, HTTP_OPTIONS, "source.http", site);
  const url = checkUrl(options?.url, "url", site);
  const sha256 = String(options.sha256 ?? "").toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(sha256)) {
    throw new DefinitionError(`source ${url}: sha256 must be 64 hex characters`, site);
  }
  const mirrors = checkStrings(options.mirrors, `source ${url}: mirrors`, site).map((m) => checkUrl(m, "mirror", site));
  const extract = options.extract ?? ARCHIVE.test(new URL(url).pathname);
  const strip = options.strip ?? (extract ? 1 : 0);
  if (!Number.isInteger(strip) || strip < 0 || strip > 16) {
    throw new DefinitionError(`source ${url}: strip must be an integer from 0 to 16`, site);
  }
  return withSite({
    [SOURCE_BRAND]: true as const,
    name: checkName(options.name ?? nameFromUrl(url), "source", site),
    spec: { type: "http" as const, url, sha256, mirrors, extract, strip },
  }, site);
}

function checkUrl(value: unknown, what: string, site: SiteRef): string {
  try {
    const url = new URL(String(value));
    if (url.protocol === "http:" || url.protocol === "https:" || url.protocol === "file:") return url.href;
  } catch {
    // Reported below.
  }
  throw new DefinitionError(`${what} ${JSON.stringify(value)} must be an http(s) or file URL`, site);
}

/** "musl-1.2.3.tar.gz" → "musl". */
export function nameFromUrl(url: string): string {
  const file = decodeURIComponent(new URL(url).pathname.split("/").pop() || "source");
  const stem = file.replace(ARCHIVE, "").replace(/\.[A-Za-z0-9]+$/, "");
  const name = stem.split(/[-_](?=v?\d)/)[0] || stem;
  return name.replace(/[^A-Za-z0-9._-]/g, "-").replace(/^[^A-Za-z0-9]+/, "") || "source";
}
