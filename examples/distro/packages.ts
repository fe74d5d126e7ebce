// Owns the userland: busybox (the shell and core utilities), zlib, dropbear (links zlib), xz,
// bzip2 and lua, each from its release tarball, each built in its own layer against musl-dev
// (never musl itself: see musl.ts) with the bootstrap gcc through the musl-gcc wrapper.
//
// Every build is a cross build (--host=x86_64-linux-musl): nothing linked against musl runs while
// building, because what the build root holds is musl's link stub, not a libc. Sources are
// built where they are mounted (/src/<name>, copy-on-write), a fixed path, and
// -ffile-prefix-map maps it away, so a rebuild gives the same bytes.

import { layer, type Layer } from "castle";
import { sourceLayer, type DebianMirrors } from "./debian";
import { MUSL_INC, MUSL_LIB } from "./musl";
import { sh } from "./sh";
import { TARBALLS, type OrigTarball } from "./tarballs";

/** Environment of every package build: the musl-gcc wrapper, reproducible paths. */
const MUSL_ENV = {
  CC: "musl-gcc",
  CFLAGS: "-O2 -ffile-prefix-map=/src=/usr/src",
  AR: "ar",
  RANLIB: "ranlib",
  STRIP: "strip",
};

/** Autoconf options of a cross build against musl, installed where musl's libraries are. */
const CONFIGURE = `--build=x86_64-linux-gnu --host=x86_64-linux-musl --prefix=/usr --libdir=${MUSL_LIB} --includedir=${MUSL_INC}`;

export interface Userland {
  busybox: Layer;
  zlib: Layer;
  dropbear: Layer;
  xz: Layer;
  bzip2: Layer;
  lua: Layer;
}

export function userlandLayers(toolchain: Layer, muslDev: Layer, mirrors: DebianMirrors): Userland {
  const src = (orig: OrigTarball) => sourceLayer(orig, mirrors);
  const buildDeps = [toolchain, muslDev];

  /** Busybox's defconfig, linked dynamically against musl; its applets are links to /bin/busybox. */
  const busybox = layer({
    name: "busybox",
    buildDeps,
    mounts: { "/src/busybox": src(TARBALLS.busybox) },
    cwd: "/src/busybox",
    // No build date in the binary (kconfig's timestamp), so a rebuild gives the same bytes.
    env: { KCONFIG_NOTIMESTAMP: "1" },
    script: sh`
      make -s HOSTCC=gcc defconfig
      # tc does not build against Linux 6.x headers (removed CBQ definitions).
      sed -i 's/^CONFIG_TC=y/# CONFIG_TC is not set/' .config
      # The same make variables for the build and the install: kbuild recompiles every object
      # whose command line changed, so an install without EXTRA_CFLAGS would build it all again.
      set -- HOSTCC=gcc CC=musl-gcc EXTRA_CFLAGS=-ffile-prefix-map=/src=/usr/src
      make -s "$@" busybox
      # Install beside the root first: installing over / would replace the tools doing the install
      # (ln, cp...) with applet links that cannot run here (the build root has musl's link stub).
      make -s "$@" CONFIG_PREFIX=/tmp/stage install
      # Into the merged /usr (the relative links still reach /usr/bin/busybox from there).
      # The copy replaces cp itself: use a copy of cp.
      cp /usr/bin/cp /tmp/cp
      /tmp/cp -a /tmp/stage/bin/. /tmp/stage/usr/bin/. /usr/bin/
      /tmp/cp -a /tmp/stage/sbin/. /tmp/stage/usr/sbin/. /usr/sbin/
      /tmp/cp -a /tmp/stage/linuxrc /
    `,
  });

  const zlib = layer({
    name: "zlib",
    buildDeps,
    mounts: { "/src/zlib": src(TARBALLS.zlib) },
    cwd: "/src/zlib",
    env: MUSL_ENV,
    script: sh`
      ./configure --prefix=/usr --libdir=${MUSL_LIB} --sharedlibdir=${MUSL_LIB} --includedir=${MUSL_INC}
      make
      # LDCONFIG=true: glibc's ldconfig would write its (volatile) cache into the layer.
      make LDCONFIG=true install
    `,
  });

  /** The SSH server and client; links zlib (built against zlib's layer, which it needs at run time). */
  const dropbear = layer({
    name: "dropbear",
    buildDeps,
    runDeps: [zlib],
    mounts: { "/src/dropbear": src(TARBALLS.dropbear) },
    cwd: "/src/dropbear",
    env: MUSL_ENV,
    script: sh`
      ./configure ${CONFIGURE} --disable-lastlog --disable-utmp --disable-utmpx --disable-wtmp --disable-wtmpx
      grep -q '^#define DISABLE_ZLIB' config.h && { echo "dropbear: zlib was not found"; exit 1; }
      make PROGRAMS="dropbear dbclient dropbearkey dropbearconvert scp"
      make PROGRAMS="dropbear dbclient dropbearkey dropbearconvert scp" install
    `,
  });

  const xz = layer({
    name: "xz",
    buildDeps,
    mounts: { "/src/xz": src(TARBALLS.xz) },
    cwd: "/src/xz",
    env: MUSL_ENV,
    script: sh`
      ./configure ${CONFIGURE} --disable-static --disable-nls --disable-doc
      make
      make install
    `,
  });

  /** bzip2 has no configure and no DESTDIR: build the shared library and tools, install by hand. */
  const bzip2 = layer({
    name: "bzip2",
    buildDeps,
    mounts: { "/src/bzip2": src(TARBALLS.bzip2) },
    cwd: "/src/bzip2",
    env: MUSL_ENV,
    script: sh`
      flags="-fPIC -O2 -D_FILE_OFFSET_BITS=64 -ffile-prefix-map=/src=/usr/src"
      make -f Makefile-libbz2_so CC=musl-gcc CFLAGS="$flags"
      make CC=musl-gcc CFLAGS="$flags" bzip2recover
      install -D -m 755 bzip2-shared /usr/bin/bzip2
      install -D -m 755 bzip2recover /usr/bin/bzip2recover
      ln -sf bzip2 /usr/bin/bunzip2
      ln -sf bzip2 /usr/bin/bzcat
      install -D -m 755 libbz2.so.1.0.8 ${MUSL_LIB}/libbz2.so.1.0.8
      ln -sf libbz2.so.1.0.8 ${MUSL_LIB}/libbz2.so.1.0
      ln -sf libbz2.so.1.0.8 ${MUSL_LIB}/libbz2.so
      install -D -m 644 bzlib.h ${MUSL_INC}/bzlib.h
    `,
  });

  const lua = layer({
    name: "lua",
    buildDeps,
    mounts: { "/src/lua": src(TARBALLS.lua) },
    cwd: "/src/lua",
    script: sh`
      make CC=musl-gcc MYCFLAGS=-ffile-prefix-map=/src=/usr/src linux
      make install INSTALL_TOP=/usr INSTALL_INC=${MUSL_INC} INSTALL_LIB=${MUSL_LIB} \
        INSTALL_MAN=/usr/share/man/man1 INSTALL_CMOD=${MUSL_LIB}/lua/5.4
    `,
  });

  return { busybox, zlib, dropbear, xz, bzip2, lua };
}
