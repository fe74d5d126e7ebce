// Owns the Debian side of the distro's sources: a pinned source for every package in
// bootstrap/debs.lock.json and for every Debian `.orig` tarball, from the mirrors that mirrors.ts
// chooses.

import { layer, source, type Layer, type Source } from "castle";
import lock from "./bootstrap/debs.lock.json";
import type { DebianMirrors } from "./mirrors";
import type { OrigTarball } from "./tarballs";

export { debianMirrors, type DebianMirrors } from "./mirrors";
export type { OrigTarball } from "./tarballs";

export interface LockedDeb {
  name: string;
  version: string;
  arch: string;
  archive: "main" | "security";
  /** Path below the archive root, e.g. pool/main/b/busybox/busybox-static_…_amd64.deb. */
  path: string;
  size: number;
  sha256: string;
}

/** The locked .debs of the bootstrap toolchain. */
export const lockedDebs: LockedDeb[] = lock.packages as LockedDeb[];

/** A source name for a package: source names allow letters, digits, ".", "_" and "-". */
export function debSourceName(pkg: string): string {
  return `deb-${pkg.replace(/\+/g, "x")}`;
}

/** A locked .deb as a pinned file source (not unpacked: the toolchain layer unpacks it). */
export function debSource(deb: LockedDeb, mirrors: DebianMirrors, options: { extract?: boolean; name?: string } = {}): Source {
  const bases = deb.archive === "security" ? mirrors.security : mirrors.main;
  const [url, ...others] = bases.map((base) => `${base}/${encodeURI(deb.path)}`);
  return source.http({
    name: options.name ?? debSourceName(deb.name),
    url: url!,
    mirrors: others,
    sha256: deb.sha256,
    extract: options.extract ?? false,
    strip: 0,
  });
}

/**
 * A source tarball as a layer of its own (`<package>-source`, its unpacked files), for mounting
 * where the package builds. Castle realizes a layer's source mounts only once the layer's key is
 * known, i.e. after its dependencies are built; an import layer is a dependency, so it is
 * downloaded and unpacked while musl builds, and every package is ready to start the moment
 * musl-dev is — in the order the system lists them, the longest (busybox) first.
 */
export function sourceLayer(orig: OrigTarball, mirrors: DebianMirrors): Layer {
  return layer.import({ name: orig.name.replace(/-src$/, "-source"), from: origSource(orig, mirrors) });
}

/** An upstream release pinned by sha256: the upstream URL first, then the same bytes in Debian's pool. */
export function origSource(orig: OrigTarball, mirrors: DebianMirrors): Source {
  const pool = mirrors.main.map((base) => `${base}/${orig.pool}`);
  const [url, ...others] = orig.upstream ? [orig.upstream, ...pool] : pool;
  return source.http({ name: orig.name, url: url!, mirrors: others, sha256: orig.sha256 });
}
