#!/bin/bash
# The peer of bench/distro-build.ts: the distro built the plain way, by one sequential script —
# the same locked .debs unpacked with dpkg-deb into a tree, then musl, zlib, dropbear, xz, bzip2,
# lua and busybox built one after another inside that tree (unshare -Urmpf + chroot, so it works
# without root), each with make -j$JOBS, against the real musl (no ABI stub: a plain build has no
# cache to protect). Same sources, same configure options as examples/distro.
#
#   bench/distro/plain-build.sh <work-dir> <files-dir>
#
# <files-dir> holds debs/*.deb and src/<package>.tar.* (bench/distro/common.ts prepares it).
# <work-dir> is replaced; it keeps the tree (root/) with every build dir, so that
# bench/distro-patch.ts can rebuild musl incrementally in it. Prints the time of each phase.
set -euo pipefail

W=$1
F=$2
JOBS=${JOBS:-$(nproc)}
R=$W/root
now() { date +%s.%N; }

rm -rf "$W"
mkdir -p "$R"
t0=$(now)

# 1. The toolchain: every locked .deb, Debian 12's merged /usr, what maintainer scripts would do.
mkdir -p "$R"/usr/{bin,sbin,lib,lib64} "$R"/{dev,proc,tmp,build}
for d in bin sbin lib lib64; do ln -s "usr/$d" "$R/$d"; done
ls "$F"/debs/*.deb | xargs -P "$JOBS" -I{} sh -c "dpkg-deb --fsys-tarfile {} | tar -x --keep-directory-symlink --no-same-owner -C '$R'"
ln -s gcc "$R/usr/bin/cc"
ln -s mawk "$R/usr/bin/awk"
ln -s which.debianutils "$R/usr/bin/which"
cp "$R/usr/share/base-passwd/passwd.master" "$R/etc/passwd"
cp "$R/usr/share/base-passwd/group.master" "$R/etc/group"
for t in "$F"/src/*; do
  name=$(basename "$t")
  name=${name%%.tar*}
  mkdir "$R/build/$name"
  tar -xf "$t" -C "$R/build/$name" --strip-components=1 --no-same-owner
done
t1=$(now)

# 2. The packages, one after another (busybox last: its install replaces the tools the others use).
cat > "$R/build.sh" <<'SCRIPT'
set -eu
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
export SOURCE_DATE_EPOCH=315532800 KCONFIG_NOTIMESTAMP=1
I=/usr/include/x86_64-linux-musl
L=/usr/lib/x86_64-linux-musl
step() { echo "plain: $1 $(date +%s.%N)"; }

step musl
mkdir -p /build/musl/obj && cd /build/musl/obj
../configure --prefix=/usr --includedir=$I --libdir=$L --syslibdir=/lib --enable-wrapper=gcc --disable-static > /dev/null
make > /dev/null
make install > /dev/null
printf '%s\n' $L /usr/local/lib /usr/lib > /etc/ld-musl-x86_64.path
cd $I && ln -s ../linux linux && ln -s ../asm-generic asm-generic && ln -s ../x86_64-linux-gnu/asm asm && ln -s ../mtd mtd

export CC=musl-gcc CFLAGS="-O2 -ffile-prefix-map=/build=/usr/src" AR=ar RANLIB=ranlib STRIP=strip
C="--build=x86_64-linux-gnu --host=x86_64-linux-musl --prefix=/usr --libdir=$L --includedir=$I"

step zlib
cd /build/zlib
./configure --prefix=/usr --libdir=$L --sharedlibdir=$L --includedir=$I > /dev/null
make > /dev/null && make LDCONFIG=true install > /dev/null

step dropbear
cd /build/dropbear
./configure $C --disable-lastlog --disable-utmp --disable-utmpx --disable-wtmp --disable-wtmpx > /dev/null
make PROGRAMS="dropbear dbclient dropbearkey dropbearconvert scp" > /dev/null
make PROGRAMS="dropbear dbclient dropbearkey dropbearconvert scp" install > /dev/null

step xz
cd /build/xz
./configure $C --disable-static --disable-nls --disable-doc > /dev/null
make > /dev/null && make install > /dev/null

step bzip2
cd /build/bzip2
flags="-fPIC -O2 -D_FILE_OFFSET_BITS=64"
make -f Makefile-libbz2_so CC=musl-gcc CFLAGS="$flags" > /dev/null
make CC=musl-gcc CFLAGS="$flags" bzip2recover > /dev/null
install -D -m 755 bzip2-shared /usr/bin/bzip2
install -D -m 755 bzip2recover /usr/bin/bzip2recover
install -D -m 755 libbz2.so.1.0.8 $L/libbz2.so.1.0.8
ln -sf libbz2.so.1.0.8 $L/libbz2.so.1.0
install -D -m 644 bzlib.h $I/bzlib.h

step lua
cd /build/lua
make CC=musl-gcc linux > /dev/null
make install INSTALL_TOP=/usr INSTALL_INC=$I INSTALL_LIB=$L INSTALL_MAN=/usr/share/man/man1 > /dev/null

step busybox
cd /build/busybox
make -s HOSTCC=gcc defconfig > /dev/null
sed -i 's/^CONFIG_TC=y/# CONFIG_TC is not set/' .config
make -s HOSTCC=gcc CC=musl-gcc busybox > /dev/null
make -s HOSTCC=gcc CC=musl-gcc CONFIG_PREFIX=/tmp/stage install > /dev/null
cp /usr/bin/cp /tmp/cp
/tmp/cp -a /tmp/stage/bin/. /tmp/stage/usr/bin/. /usr/bin/
/tmp/cp -a /tmp/stage/sbin/. /tmp/stage/usr/sbin/. /usr/sbin/
step done
SCRIPT
JOBS=$JOBS unshare -Urmpf sh -c '
  mount --rbind /dev "$1/dev" && mount -t proc proc "$1/proc" && mount -t tmpfs tmpfs "$1/tmp" &&
  exec chroot "$1" /usr/bin/env MAKEFLAGS=-j"$2" /bin/sh /build.sh' plain "$R" "$JOBS"
t2=$(now)

awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "plain: unpack-s %.1f build-s %.1f total-s %.1f\n", b - a, c - b, c - a }'
