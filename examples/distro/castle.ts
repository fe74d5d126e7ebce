// A small Linux distro built from pinned sources: a Debian 12 toolchain unpacked from locked .debs
// (no root, no maintainer scripts), then musl, busybox, zlib, dropbear, xz, bzip2 and lua from
// their release tarballs, all linked against that musl. See README.md for the walkthrough.
//
// How the layers are built (→ means "is built on"):
//   toolchain                          unpacked .debs; nothing beneath it (toolchain.ts)
//   musl       → toolchain             the libc, incrementally from an object cache (musl.ts)
//   musl-dev   → toolchain + musl      musl's ABI: headers, crt files, a libc.so link stub
//   busybox, zlib, xz, bzip2, lua → toolchain + musl-dev                   (packages.ts)
//   dropbear   → toolchain + musl-dev + zlib
// Packages are built against musl-dev, never musl itself, so a change inside libc that keeps its
// ABI rebuilds musl and musl-dev (to the same bytes) and nothing else. The system composes the
// real musl beneath the packages, so every program runs against it.

import { layer, source, system } from "castle";
import { debianMirrors } from "./debian";
import { muslLayers } from "./musl";
import { userlandLayers } from "./packages";
import { toolchainLayer } from "./toolchain";

const mirrors = debianMirrors();
const toolchain = toolchainLayer(mirrors);
const { musl, muslDev } = muslLayers(toolchain, mirrors);
const { busybox, zlib, dropbear, xz, bzip2, lua } = userlandLayers(toolchain, muslDev, mirrors);

/** The system's own files: a login profile, its name, root's home. */
const etc = layer.import({
  name: "etc",
  from: source.inline(
    {
      // Single quotes: in double quotes the shell would turn \$ into $ before the prompt sees it,
      // and the prompt would say $ even for root (it says # then).
      "etc/profile": "export PS1='castle-distro:\\w\\$ '\nexport PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin\n",
      "etc/os-release": 'NAME="Castle distro"\nID=castle-distro\nPRETTY_NAME="Castle distro (musl 1.2.3, busybox 1.35.0)"\n',
      "root/.keep": "",
    },
    { name: "etc-files" },
  ),
});

export default system({
  name: "distro",
  // Later layers win where paths collide: busybox's applets replace Debian's coreutils and dash
  // (so /bin/sh is busybox), and the real xz and bzip2 replace busybox's applets of those names.
  layers: [toolchain, musl, busybox, zlib, xz, bzip2, lua, dropbear, etc],
  entrypoint: ["/bin/sh", "-l"],
  hostname: "castle-distro",
});
