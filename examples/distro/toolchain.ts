// Owns the bootstrap toolchain layer: Debian 12's Essential packages plus gcc, make and friends,
// unpacked from the locked .debs (bootstrap/debs.lock.json) in one sandboxed build with the static
// busybox from its own .deb — no root, no dpkg, no maintainer scripts (their effects are done by
// hand: merged /usr links, alternatives, passwd/group; setuid bits are dropped).

import { layer, type Layer } from "castle";
import { debSource, lockedDebs, type DebianMirrors } from "./debian";
import { sh } from "./sh";

/** Every locked .deb unpacked into one tree, plus what the maintainer scripts would have done. */
export function toolchainLayer(mirrors: DebianMirrors): Layer {
  const busyboxStaticDeb = lockedDebs.find((d) => d.name === "busybox-static")!;
  return layer({
    name: "toolchain",
    // Nothing is beneath this layer: it runs the static busybox from its own .deb.
    shell: ["/bootstrap/bin/busybox", "sh", "-euc"],
    mounts: {
      "/bootstrap": debSource(busyboxStaticDeb, mirrors, { extract: true, name: "bootstrap-busybox" }),
      ...Object.fromEntries(lockedDebs.map((deb) => [`/debs/${deb.name}`, debSource(deb, mirrors)])),
    },
    script: sh`
      /bootstrap/bin/busybox mkdir -p /tmp/applets
      /bootstrap/bin/busybox --install -s /tmp/applets
      export PATH=/tmp/applets
      # Debian 12's merged /usr: the top-level directories are links into /usr; tar writes through them.
      mkdir -p /usr/bin /usr/sbin /usr/lib /usr/lib64
      for d in bin sbin lib lib64; do ln -s usr/$d /$d; done
      # Unpack each package's files (-o: no chown, a single-id user namespace cannot).
      ls /debs/*/*.deb | xargs -P "$CASTLE_JOBS" -n 1 sh -c 'ar p "$1" data.tar.xz | unxz | tar -x -o -C /' unpack
      # What maintainer scripts would do: alternatives, users and groups.
      ln -s gcc /usr/bin/cc
      ln -s mawk /usr/bin/awk
      ln -s mawk /usr/bin/nawk
      ln -s which.debianutils /usr/bin/which
      cp /usr/share/base-passwd/passwd.master /etc/passwd
      cp /usr/share/base-passwd/group.master /etc/group
      # No setuid or setgid files in a layer; no manuals or translations (builds do not read them).
      find / -xdev -type f \( -perm -4000 -o -perm -2000 \) -exec chmod ug-s {} +
      rm -rf /usr/share/doc /usr/share/man /usr/share/info /usr/share/locale
      # The compiler works.
      printf 'int main(void) { return 0; }\n' > /tmp/ok.c
      PATH=/usr/bin /usr/bin/cc -o /tmp/ok /tmp/ok.c
      /tmp/ok
    `,
  });
}
