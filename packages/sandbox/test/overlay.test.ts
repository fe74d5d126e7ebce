// The filesystem: overlay roots and mounts with both drivers (kernel overlayfs and
// fuse-overlayfs), as this process and as uid 65534. Writes, whiteouts and opaque dirs land in the
// upper in the kernel's format, and an upper serves as a lower of a later run (layer composition).

import { existsSync, lstatSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run, serializeSpec, type OverlayDriver, type SandboxSpec } from "../src/index";
import {
  CALLERS, busyboxMissing, callerMissing, cleanup, getXattr, makeLayer, makeRootfs, ownedDir, runHelper, support,
  tempDir,
  type Caller,
} from "./fixtures";

const DRIVERS: Exclude<OverlayDriver, "auto">[] = ["kernel", "fuse"];
const skipAll = busyboxMissing();

describe.skipIf(skipAll)("overlay roots and mounts", () => {
  let base: string;
  let rootfs: string;

  beforeAll(() => {
    base = tempDir();
    rootfs = makeRootfs(base);
  });
  afterAll(cleanup);

  describe.each(CALLERS)("as $name", (caller: Caller) => {
    const opts = caller.asUser ? { asUser: caller.asUser } : {};
    // Layers belong to the caller, as Castle's store does (files of another owner are not
    // writable by root inside when that owner is unmapped).
    let layer: string;
    beforeAll(() => {
      layer = makeLayer(base, `layer-${caller.uid}`, { "etc/gone": "bye\n", "etc/kept": "kept\n", "d/a": "a\n", "d/sub/b": "b\n" }, caller);
    });

    describe.each(DRIVERS)("with the %s driver", (driver) => {
      let skip: string | undefined;
      let n = 0;
      const fresh = (name: string) => {
        const dir = ownedDir(base, `${driver}-${caller.uid}-${name}-${n++}`, caller);
        return { upper: ownedDir(dir, "upper", caller), work: ownedDir(dir, "work", caller) };
      };
      const sh = (script: string, spec: Partial<SandboxSpec>) =>
        run({ root: { lowers: [rootfs, layer] }, argv: ["/bin/sh", "-c", script], overlay: driver, ...spec }, opts);

      beforeAll(async () => {
        skip = callerMissing(caller);
        if (skip) return;
        const s = await support(caller);
        const feature = driver === "kernel" ? s.kernelOverlay : s.fuseOverlay;
        if (!feature.ok) skip = `${driver} overlay unavailable as ${caller.name}: ${feature.reason}`;
      });
      const check = (ctx: { skip: () => void }) => {
        if (skip) {
          console.warn(`skipped: ${skip}`);
          ctx.skip();
        }
      };

      it("reports the driver, and writes land in the upper, never in a lower", async (ctx) => {
        check(ctx);
        const { upper, work } = fresh("writes");
        const child = await sh("echo new > /new.txt; echo changed > /etc/kept; cat /etc/kept", {
          root: { lowers: [rootfs, layer], upper, work },
        });
        expect(child.code).toBe(0);
        expect(child.stdout).toBe("changed\n");
        expect(readFileSync(join(upper, "new.txt"), "utf8")).toBe("new\n");
        expect(readFileSync(join(upper, "etc/kept"), "utf8")).toBe("changed\n");
        expect(readFileSync(join(layer, "etc/kept"), "utf8")).toBe("kept\n");
        expect(existsSync(join(layer, "new.txt"))).toBe(false);
        expect(lstatSync(join(upper, "new.txt")).uid).toBe(caller.uid);
      });

      it("records a deleted lower file as a whiteout, and an opaque dir with user.overlay.opaque", async (ctx) => {
        check(ctx);
        const { upper, work } = fresh("whiteout");
        const r = await sh("rm /etc/gone && test ! -e /etc/gone && rm -rf /d && mkdir /d && touch /d/new && ls /d", {
          root: { lowers: [rootfs, layer], upper, work },
        });
        expect(r.stderr).toBe("");
        expect(r.stdout).toBe("new\n");
        const whiteout = lstatSync(join(upper, "etc/gone"));
        expect(whiteout.isCharacterDevice()).toBe(true);
        expect(whiteout.rdev).toBe(0);
        expect(getXattr(join(upper, "d"), "user.overlay.opaque")).toBe("y");
        expect(readdirSync(join(upper, "d"))).toEqual(["new"]); // no driver-private marker files
        expect(existsSync(join(layer, "etc/gone"))).toBe(true);
      });

      it("uses an upper with whiteouts and opaque dirs as a lower of a later run", async (ctx) => {
        check(ctx);
        const first = fresh("compose-1");
        const r1 = await sh("rm /etc/gone; rm -rf /d; mkdir /d; echo 1 > /d/one; echo first > /first", {
          root: { lowers: [rootfs, layer], upper: first.upper, work: first.work },
        });
        expect(r1.code).toBe(0);
        const second = fresh("compose-2");
        const r2 = await sh("test -e /etc/gone && echo gone-is-back; ls /d; cat /first /etc/kept; echo second > /second", {
          root: { lowers: [rootfs, layer, first.upper], upper: second.upper, work: second.work },
        });
        expect(r2.stdout).toBe("one\nfirst\nkept\n");
        expect(existsSync(join(second.upper, "second"))).toBe(true);
        expect(existsSync(join(first.upper, "second"))).toBe(false);
        // And read-only, with the kernel driver, whatever built the layer.
        const r3 = await run(
          { root: { lowers: [rootfs, layer, first.upper, second.upper] }, argv: ["/bin/sh", "-c", "ls /d; cat /second; ls /etc"], overlay: "kernel" },
          opts,
        );
        expect(r3.stdout).toBe("one\nsecond\nkept\npasswd\n");
      });

      it("mounts a volatile upper again and again (the volatile marker is cleared on exit)", async (ctx) => {
        check(ctx);
        const { upper, work } = fresh("volatile");
        for (const n of [1, 2]) {
          const r = await sh(`echo ${n} >> /log; cat /log`, { root: { lowers: [rootfs, layer], upper, work, volatile: true } });
          expect(r.stdout).toBe(n === 1 ? "1\n" : "1\n2\n");
        }
        expect(existsSync(join(work, "work/incompat"))).toBe(false);
      });

      it("mounts binds (ro and rw), tmpfs and overlays at paths, in order", async (ctx) => {
        check(ctx);
        const shared = ownedDir(base, `shared-${driver}-${caller.uid}-${n++}`, caller);
        const ov = fresh("mount");
        const r = await sh(
          "echo rw > /mnt/rw/file; echo ro > /mnt/ro/file || echo ro-refused; df -P /scratch | tail -1 | tr -s ' ' | cut -d' ' -f2; " +
            "cat /srv/data/etc/kept; echo ov > /srv/data/written; ls -d /scratch/inner",
          {
            mounts: [
              { type: "bind", source: shared, target: "/mnt/rw" },
              { type: "bind", source: shared, target: "/mnt/ro", readonly: true },
              { type: "tmpfs", target: "/scratch", sizeBytes: 4 * 1024 * 1024, mode: 0o1777 },
              { type: "tmpfs", target: "/scratch/inner" },
              { type: "overlay", target: "/srv/data", lowers: [layer], upper: ov.upper, work: ov.work },
            ],
          },
        );
        expect(r.stdout).toBe("ro-refused\n4096\nkept\n/scratch/inner\n");
        expect(readFileSync(join(shared, "file"), "utf8")).toBe("rw\n");
        expect(readFileSync(join(ov.upper, "written"), "utf8")).toBe("ov\n");
      });

      it("keeps a root without an upper read-only, even when it lacks mount points", async (ctx) => {
        check(ctx);
        const bare = makeRootfs(base, `bare-${driver}-${caller.uid}-${n++}`, { bare: true });
        const r = await run(
          {
            root: { lowers: [bare, layer] }, overlay: driver,
            argv: ["/bin/sh", "-c", "touch /x || echo refused; ls /proc/self/ns >/dev/null && echo proc; ls -d /dev/pts /tmp"],
          },
          opts,
        );
        expect(r.stdout, r.stderr).toBe("refused\nproc\n/dev/pts\n/tmp\n");
        expect(r.stderr).toMatch(/Read-only file system/);
        expect(readdirSync(bare).sort()).toEqual(["bin", "etc", "root", "usr"]);
      });
    });

    it.skipIf(callerMissing(caller))("composes 500 lowers, the top one winning", async () => {
      const layers = Array.from({ length: 499 }, (_, i) => makeLayer(base, `many-${caller.uid}/${i}`, { top: `${i}\n`, [`f${i}`]: "x" }));
      const r = await run({ root: { lowers: [rootfs, ...layers] }, argv: ["/bin/sh", "-c", "cat /top; cat /f0 /f498"] }, opts);
      expect(r.stdout).toBe("498\nxx");
      expect(r.code).toBe(0);
    });
  });

  it("rejects 501 lowers with CASTLE_SANDBOX_SPEC", async () => {
    const lowers = Array.from({ length: 501 }, (_, i) => `/layers/${i}`);
    await expect(run({ root: { lowers }, argv: ["/bin/true"] })).rejects.toMatchObject({
      code: "CASTLE_SANDBOX_SPEC",
      data: { field: "root.lowers" },
    });
  });

  it("builds 500 lowers with the mount(2) fallback too (kernels before 6.8)", async () => {
    const layers = Array.from({ length: 499 }, (_, i) => makeLayer(base, `legacy/${i}`, { top: `${i}\n` }));
    const spec = serializeSpec({ root: { lowers: [rootfs, ...layers] }, argv: ["/bin/cat", "/top", "/proc/self/mountinfo"] });
    const r = await runHelper(spec, { env: { ...process.env, CASTLE_SANDBOX_LEGACY_MOUNT: "1" } });
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n")[0]).toBe("498");
    expect(r.stdout).toMatch(/lowerdir=[0-9a-z]+:[0-9a-z]+/); // short symlink names, not host paths
  });
});
