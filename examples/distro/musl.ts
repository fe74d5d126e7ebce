// Owns the libc: musl built from its release tarball (incrementally, from an object cache), and
// musl-dev, the ABI layer every package links against (headers, start files, a libc.so link stub),
// which is what keeps a libc patch from rebuilding the world.

import { layer, type Layer } from "castle";
import { sourceLayer, type DebianMirrors } from "./debian";
import { sh } from "./sh";
import { TARBALLS } from "./tarballs";

/** Where musl and everything linked against it keep headers and libraries (Debian's layout). */
export const MUSL_INC = "/usr/include/x86_64-linux-musl";
export const MUSL_LIB = "/usr/lib/x86_64-linux-musl";

export function muslLayers(toolchain: Layer, mirrors: DebianMirrors): { musl: Layer; muslDev: Layer } {
  const muslSrc = sourceLayer(TARBALLS.musl, mirrors);

  /**
   * musl, shared only (the distro links dynamically; a static libc.a would double the build),
   * installed where Debian's musl packages put it: headers and libraries under
   * x86_64-linux-musl, the dynamic linker /lib/ld-musl-x86_64.so.1 (which also searches
   * x86_64-linux-musl, see /etc/ld-musl-x86_64.path), the musl-gcc wrapper.
   *
   * Objects are kept in a cache between builds. The source is copied into it by content, so a
   * changed file gets a new mtime and make recompiles only what that file feeds; any change that is
   * not a .c/.s/.S file, or another compiler, starts from a clean object dir. The output is the
   * same bytes either way.
   */
  const musl = layer({
    name: "musl",
    buildDeps: [toolchain],
    mounts: { "/src/musl": muslSrc },
    caches: { "/cache": "musl-build" },
    env: { MUSL_CONFIGURE: `--prefix=/usr --includedir=${MUSL_INC} --libdir=${MUSL_LIB} --syslibdir=/lib --enable-wrapper=gcc --disable-static` },
    script: sh`
      exec 9>/cache/lock
      flock 9
      stamp="musl-build-1 $(cc -dumpfullversion) $(ld --version | head -n 1) $MUSL_CONFIGURE"
      if [ "$(cat /cache/stamp 2>/dev/null)" != "$stamp" ]; then
        rm -rf /cache/src /cache/obj /cache/files
        printf '%s\n' "$stamp" > /cache/stamp
      fi
      touch /cache/files
      (cd /src/musl && find . -type f | LC_ALL=C sort | xargs -d '\n' sha256sum) | LC_ALL=C sort > /tmp/files
      LC_ALL=C comm -13 /cache/files /tmp/files | cut -c67- > /tmp/changed
      if [ ! -f /cache/obj/config.mak ] || grep -qv '\.[csS]$' /tmp/changed; then
        echo "musl: clean build ($(wc -l < /tmp/changed) files new or changed)"
        rm -rf /cache/src /cache/obj
        mkdir -p /cache/src /cache/obj
        cp -a /src/musl/. /cache/src/
        cd /cache/obj
        /cache/src/configure $MUSL_CONFIGURE
      else
        echo "musl: incremental build; changed: $(tr '\n' ' ' < /tmp/changed)"
        cut -c67- /cache/files | LC_ALL=C sort > /tmp/old-paths
        cut -c67- /tmp/files | LC_ALL=C sort > /tmp/new-paths
        LC_ALL=C comm -23 /tmp/old-paths /tmp/new-paths | (cd /cache/src && xargs -r -d '\n' rm -f)
        while read -r path; do
          mkdir -p "/cache/src/$(dirname "$path")"
          rm -f "/cache/src/$path"
          cp "/src/musl/$path" "/cache/src/$path"
        done < /tmp/changed
        cd /cache/obj
      fi
      make -j"$CASTLE_JOBS"
      # coreutils install, not musl's tools/install.sh: a shell script per file (~280 of them)
      # was most of an incremental rebuild (2 s of 3). It has no -l, so the link is made here.
      make install INSTALL=install
      ln -sf ${MUSL_LIB}/libc.so /lib/ld-musl-x86_64.so.1
      mv /tmp/files /cache/files
      # Libraries built against musl live beside it; the dynamic linker searches there first.
      mkdir -p /etc
      printf '%s\n' ${MUSL_LIB} /usr/local/lib /usr/lib > /etc/ld-musl-x86_64.path
      # Kernel headers for programs that include <linux/...> (busybox), from the pinned linux-libc-dev.
      cd ${MUSL_INC}
      ln -s ../linux linux
      ln -s ../asm-generic asm-generic
      ln -s ../x86_64-linux-gnu/asm asm
      ln -s ../mtd mtd
      # musl's dynamic linker is its ldd when called by that name; the toolchain's ldd is glibc's
      # and cannot read musl programs. This layer comes after the toolchain's, so it wins.
      mkdir -p /usr/bin
      ln -sf /lib/ld-musl-x86_64.so.1 /usr/bin/ldd
    `,
  });

  /**
   * What packages link against: musl's headers, start files, empty stub archives and compiler
   * wrapper, and in place of libc.so a *link stub* with the real one's dynamic symbols (name, kind,
   * binding, size) and nothing else — like Chromium's .TOC files. A change inside libc that keeps
   * its ABI rebuilds musl and then this layer to identical bytes, so nothing linked against it
   * rebuilds (early cutoff). The running system uses the real libc.so from the musl layer.
   */
  const muslDev = layer({
    name: "musl-dev",
    buildDeps: [toolchain],
    mounts: { "/musl": musl },
    script: sh`
      L=${MUSL_LIB}
      mkdir -p /usr/include "$L" /usr/bin
      cp -a /musl${MUSL_INC} /usr/include/
      cp -a /musl$L/*.o /musl$L/musl-gcc.specs "$L/"
      cp -a /musl/usr/bin/musl-gcc /usr/bin/
      cp -a /musl$L/*.a "$L/"  # empty stubs (libm.a, libpthread.a...): libc.so holds them all
      # The stub: every defined dynamic symbol as assembly, linked with the real soname (if any).
      readelf --dyn-syms -W "/musl$L/libc.so" | awk '
        NR > 3 && $7 != "UND" && $7 != "ABS" && ($5 == "GLOBAL" || $5 == "WEAK") {
          if ($3 !~ /^[0-9]+$/) { print "unexpected size " $3 " of " $8 > "/dev/stderr"; exit 1 }
          print $8, $4, $5, $3
        }' | LC_ALL=C sort -u > /tmp/symbols
      awk '
        { print ($3 == "WEAK" ? ".weak " : ".globl ") $1 }
        $2 == "FUNC" { print ".text"; print ".type " $1 ", @function"; print $1 ":"; print "ret"; print ".size " $1 ", 1"; next }
        {
          print ($2 == "TLS" ? ".section .tbss,\"awT\",@nobits" : ".data"); print ".balign 16"
          print ".type " $1 ", " ($2 == "TLS" ? "@tls_object" : "@object"); print $1 ":"
          print ".zero " ($4 > 0 ? $4 : 1); print ".size " $1 ", " $4
        }' /tmp/symbols > /tmp/libc-stub.s
      soname=$(readelf -d "/musl$L/libc.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
      cc -shared -nostdlib -o "$L/libc.so" /tmp/libc-stub.s \${soname:+-Wl,-soname,$soname}
      echo "musl-dev: libc.so stub with $(wc -l < /tmp/symbols) symbols, soname '$soname'"
    `,
  });
  return { musl, muslDev };
}
