// Owns the pins of the source tarballs: each upstream release by URL and sha256, with the path
// of the same bytes in Debian's pool (its `.orig` file) as the mirror. No import of "castle"
// here, so tests and benchmarks can read the pins too.

export interface OrigTarball {
  /** Source name (what CASTLE_OVERRIDE_<name> and `castle source --name` use). */
  name: string;
  /** The upstream release URL, or undefined when Debian's file is a repack with other bytes. */
  upstream: string | undefined;
  /** Debian's copy: pool path of the `.orig` file, relative to the archive root. */
  pool: string;
  sha256: string;
}

/** The upstream releases, pinned by sha256 of the bytes Debian's `.orig` files also have. */
export const TARBALLS = {
  musl: {
    name: "musl-src",
    upstream: "https://musl.libc.org/releases/musl-1.2.3.tar.gz",
    pool: "pool/main/m/musl/musl_1.2.3.orig.tar.gz",
    sha256: "7d5b0b6062521e4627e099e4c9dc8248d32a30285e959b7eecaa780cf8cfd4a4",
  },
  busybox: {
    name: "busybox-src",
    upstream: "https://busybox.net/downloads/busybox-1.35.0.tar.bz2",
    pool: "pool/main/b/busybox/busybox_1.35.0.orig.tar.bz2",
    sha256: "faeeb244c35a348a334f4a59e44626ee870fb07b6884d68c10ae8bc19f83a694",
  },
  // Debian's zlib orig is a repack (dfsg) with other bytes than upstream's: it has no upstream URL.
  zlib: {
    name: "zlib-src",
    upstream: undefined,
    pool: "pool/main/z/zlib/zlib_1.2.13.dfsg.orig.tar.bz2",
    sha256: "71feb7947e3c00ef125f83b79a4e529bde31171e5babe48b391f06758d1ab0a1",
  },
  dropbear: {
    name: "dropbear-src",
    upstream: "https://matt.ucc.asn.au/dropbear/releases/dropbear-2022.83.tar.bz2",
    pool: "pool/main/d/dropbear/dropbear_2022.83.orig.tar.bz2",
    sha256: "bc5a121ffbc94b5171ad5ebe01be42746d50aa797c9549a4639894a16749443b",
  },
  xz: {
    name: "xz-src",
    upstream: "https://tukaani.org/xz/xz-5.4.1.tar.xz",
    pool: "pool/main/x/xz-utils/xz-utils_5.4.1.orig.tar.xz",
    sha256: "5d9827aa1875b21c288f78864bb26d2650b436ea8d2cad364e4921eb6266a5a5",
  },
  bzip2: {
    name: "bzip2-src",
    upstream: "https://sourceware.org/pub/bzip2/bzip2-1.0.8.tar.gz",
    pool: "pool/main/b/bzip2/bzip2_1.0.8.orig.tar.gz",
    sha256: "ab5a03176ee106d3f0fa90e381da478ddae405918153cca248e682cd0c4a2269",
  },
  lua: {
    name: "lua-src",
    upstream: "https://www.lua.org/ftp/lua-5.4.4.tar.gz",
    pool: "pool/main/l/lua5.4/lua5.4_5.4.4.orig.tar.gz",
    sha256: "164c7849653b80ae67bec4b7473b884bf5cc8d2dca05653475ec2ed27b9ebf61",
  },
} satisfies Record<string, OrigTarball>;

