// Reliability: sandbox escape attempts. Each case runs an attack inside a real sandbox (busybox
// rootfs plus sandbox-attack.c, a static C program) as this process and as uid 65534, and
// asserts it fails cleanly: a clear errno, no effect on the host. Secrets planted on the host
// are world-readable, so only the sandbox keeps them out; after every case no process of the
// sandbox is left, and the host's mounts are as they were.

import { execFileSync, spawn as spawnChild } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { homedir, networkInterfaces } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { text } from "node:stream/consumers";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { enter, run, spawn, type EnterSpec, type SandboxSpec } from "../../packages/sandbox/src/index";
import {
  CALLERS, LEAK_MARK, attackRootfs, hostIdOfRoot, busyboxMissing, callerMissing, cleanup, hostChanges, markedProcessesAfter, ownedDir,
  results, snapshot, support, type Caller, type HostSnapshot,
} from "./helpers/sandbox-fixture";

const skipAll = busyboxMissing();
const ENV = { PATH: "/bin:/usr/bin", MARK: LEAK_MARK };
const tag = `${process.pid}-${Date.now().toString(36)}`;

describe.skipIf(skipAll)("sandbox escapes", () => {
  let base: string;
  let rootfs: string;
  let problem: string | undefined;
  let secrets: string[];
  let otherUsersFile: string;
  let roDir: string;
  let homeMarker: string | undefined;
  let tcp: Server;
  let tcpConnections = 0;
  let unix: Server;
  const unixName = `castle-escape-${tag}`;
  let hostAddress = "";
  let before: HostSnapshot;
  const victims: string[] = [];

  beforeAll(async () => {
    ({ base, rootfs, problem } = attackRootfs());
    // Host secrets outside every mount, readable by anyone: only the sandbox keeps them out.
    secrets = [join(base, `secret-${tag}`)];
    if (existsSync("/var/tmp")) secrets.push(join("/var/tmp", `castle-secret-${tag}`));
    for (const secret of secrets) writeFileSync(secret, "TOP SECRET\n", { mode: 0o644 });
    // A host file of another host user (uid 12345), 0600: nothing inside may read it.
    otherUsersFile = join(base, "other-users-file");
    writeFileSync(otherUsersFile, "not yours\n", { mode: 0o600 });
    if (process.getuid?.() === 0) chownSync(otherUsersFile, 12345, 12345);
    roDir = join(base, "ro");
    mkdirSync(roDir, { mode: 0o755 });
    writeFileSync(join(roDir, "file"), "read-only\n", { mode: 0o644 });
    // Setuid-root copies: a plain busybox and the attack program.
    if (!problem && process.getuid?.() === 0) {
      for (const [from, to] of [["bin/busybox", "usr/bin/busybox-suid"], ["bin/attack", "usr/bin/attack-suid"]] as const) {
        copyFileSync(join(rootfs, from), join(rootfs, to));
        chownSync(join(rootfs, to), 0, 0);
        chmodSync(join(rootfs, to), 0o4755);
      }
    }
    try {
      homeMarker = join(homedir(), `.castle-escape-${tag}`);
      writeFileSync(homeMarker, "home\n", { mode: 0o644 });
    } catch {
      homeMarker = undefined;
    }
    tcp = createServer((socket) => {
      tcpConnections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => tcp.listen(0, "127.0.0.1", resolve));
    unix = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => unix.listen(`\0${unixName}`, resolve));
    hostAddress = Object.values(networkInterfaces()).flat().find((a) => a && a.family === "IPv4" && !a.internal)?.address ?? "";
    before = snapshot();
  });

  afterAll(async () => {
    tcp?.close();
    unix?.close();
    for (const secret of secrets ?? []) rmSync(secret, { force: true });
    if (homeMarker) rmSync(homeMarker, { force: true });
    for (const victim of victims) rmSync(victim, { recursive: true, force: true });
    cleanup();
  });

  afterEach(async () => {
    expect(await markedProcessesAfter(), "processes left behind").toEqual([]);
  });

  describe.each(CALLERS)("as $name", (caller: Caller) => {
    const missing = callerMissing(caller);
    const opts = caller.asUser ? { asUser: caller.asUser } : {};
    const expectedRo = caller.uid === 0 ? "EROFS" : "EACCES"; // root passes DAC first, then meets the read-only mount
    const roMount: SandboxSpec["mounts"] = [];
    const attack = async (args: string[], extra: Partial<SandboxSpec> = {}) => {
      const r = await run({ root: { lowers: [rootfs] }, argv: ["/bin/attack", ...args], env: ENV, mounts: roMount, ...extra }, opts);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      return results(r.stdout);
    };
    const sh = (script: string, extra: Partial<SandboxSpec> = {}) =>
      run({ root: { lowers: [rootfs] }, argv: ["/bin/sh", "-c", script], env: ENV, ...extra }, opts);

    beforeAll(async () => {
      roMount.push({ type: "bind", source: roDir, target: "/ro", readonly: true });
      if (missing) return;
      const s = await support(caller);
      if (!s.userNamespaces.ok) throw new Error(`user namespaces unavailable: ${s.userNamespaces.reason}`);
    });

    const needsAttack = (ctx: { skip: () => void }) => {
      if (problem) {
        console.warn(`skipped: ${problem}`);
        ctx.skip();
      }
    };

    it.skipIf(missing)("cannot ptrace, signal or even see a host process; init refuses too", async (ctx) => {
      needsAttack(ctx);
      const r = await attack(["ptrace", String(process.pid)]);
      expect(r).toEqual({
        attach_host: "ESRCH", seize_host: "ESRCH", kill_host: "ESRCH", pidfd_host: "ESRCH", proc_host: "ENOENT",
        attach_init: "EPERM", init_fd0: "EACCES", init_environ: "EACCES", init_ns_user: "EACCES",
      });
    });

    it.skipIf(missing)("TIOCSTI and TIOCLINUX fail with EPERM in piped mode", async (ctx) => {
      needsAttack(ctx);
      expect(await attack(["tty"])).toEqual({
        tiocsti: "EPERM", tiocsti_high_bits: "EPERM", tioclinux: "EPERM", open_dev_tty: "ENXIO", stdin_is_tty: "no",
      });
    });

    it.skipIf(missing)("TIOCSTI and TIOCLINUX fail with EPERM in tty mode, on the sandbox's own pty", async (ctx) => {
      needsAttack(ctx);
      const r = await run({ root: { lowers: [rootfs] }, argv: ["/bin/attack", "tty"], env: ENV, tty: true }, { ...opts, input: "" });
      expect(results(r.stdout.replace(/\r/g, ""))).toEqual({
        tiocsti: "EPERM", tiocsti_high_bits: "EPERM", tioclinux: "EPERM", open_dev_tty: "ok", tiocsti_dev_tty: "EPERM", stdin_is_tty: "yes",
      });
    });

    it.skipIf(missing)("cannot unmount, remount or pivot the new root or a read-only bind", async (ctx) => {
      needsAttack(ctx);
      const r = await attack(["mounts"]);
      expect(r).toMatchObject({
        umount_root: "EPERM", remount_root_rw: "EPERM", remount_ro_bind_rw: "EPERM", umount_ro_bind: "EPERM",
        mount_tmpfs: "EPERM", pivot_root: "EPERM", write_ro_bind: expectedRo,
      });
      expect(readFileSync(join(roDir, "file"), "utf8")).toBe("read-only\n");
    });

    it.skipIf(missing)("a nested user namespace finds every inherited mount locked", async (ctx) => {
      needsAttack(ctx);
      const r = await attack(["mounts"]);
      expect(r).toMatchObject({
        nested_remount_ro_bind_rw: "EPERM", nested_umount_ro_bind: "EINVAL", nested_write_ro_bind: expectedRo,
        nested_umount_root: "EINVAL", nested_umount_dev_null: "EINVAL", nested_mount_sysfs: "EPERM",
      });
    });

    it.skipIf(missing)("chroot, pivot_root and /proc/*/{root,cwd,fd} tricks never reach a host file", async (ctx) => {
      needsAttack(ctx);
      const r = await attack(["chroot", ...secrets]);
      const reads = Object.entries(r).filter(([name]) => /_\d+$/.test(name));
      expect(reads.length).toBeGreaterThanOrEqual(11 * secrets.length);
      for (const [name, outcome] of reads) expect(outcome, name).toMatch(/^(ENOENT|EACCES)$/);
      // The escapes themselves "work", but only climb back to the sandbox's own root.
      expect(r).toMatchObject({ chroot_fd: "ok", chroot_fd_root: "sandbox", nested_chroot_fd_root: "sandbox", nested_pivot: "ok" });
    });

    it.skipIf(missing)("open_by_handle_at and name_to_handle_at are refused, nested too (shocker)", async (ctx) => {
      needsAttack(ctx);
      expect(await attack(["handles"])).toEqual({
        name_to_handle_at: "EPERM", open_by_handle_at: "EPERM", nested_name_to_handle_at: "EPERM", nested_open_by_handle_at: "EPERM",
      });
    });

    it.skipIf(missing || process.getuid?.() !== 0)("a setuid-root binary gives nothing: another user's 0600 file stays unreadable", async (ctx) => {
      needsAttack(ctx);
      const mounts = [{ type: "bind" as const, source: otherUsersFile, target: "/other", readonly: true }];
      const viaBusybox = await sh("/usr/bin/busybox-suid cat /other", { mounts });
      expect(viaBusybox.code).not.toBe(0);
      expect(viaBusybox.stderr).toMatch(/Permission denied/);
      // The setuid copy of the attack program: still the caller outside, no new privileges.
      const child = spawn({ root: { lowers: [rootfs] }, mounts, argv: ["/usr/bin/attack-suid", "ids", "/other", "hold"], env: ENV }, { ...opts, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      const held = new Promise<void>((resolve) =>
        child.stdout?.on("data", (chunk: Buffer) => {
          out += chunk;
          if (out.includes("holding")) resolve();
        }),
      );
      const { initPid } = await child.started;
      await held;
      const command = readFileSync(`/proc/${initPid}/task/${initPid}/children`, "utf8").trim();
      const uids = readFileSync(`/proc/${command}/status`, "utf8").match(/^Uid:\s+(.*)$/m)?.[1]?.split(/\s+/);
      child.kill("SIGKILL");
      await child.wait();
      // Root's sandbox runs as an id no user has (ROOT_CALLER_ID), not as host root.
      expect(uids).toEqual(Array(4).fill(String(hostIdOfRoot(caller))));
      expect(results(out)).toMatchObject({ no_new_privs: "1", other_users_file: "EACCES" });
    });

    it.skipIf(missing)("cannot create device nodes, change the host's, or find a disk", async (ctx) => {
      needsAttack(ctx);
      const r = await attack(["devices"]);
      expect(r).toMatchObject({
        mknod_block_sda: "EPERM", mknod_char_mem: "EPERM", mknod_in_dev: "EPERM", chmod_dev_null: "EROFS", chown_dev_zero: "EROFS",
        remount_dev_null_rw: "EPERM", open_dev_sda: "ENOENT", open_dev_vda: "ENOENT", open_dev_mem: "ENOENT", open_dev_kmsg: "ENOENT",
        nested_mknod_block: "EPERM", nested_chmod_dev_null: "EROFS",
      });
      expect(r.dev?.split(",").filter(Boolean).sort()).toEqual(
        ["fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "urandom", "zero", ...(existsSync("/dev/tty") ? ["tty"] : [])].sort(),
      );
    });

    it.skipIf(missing)("has no way to the host's network: loopback TCP, host address, abstract unix socket", async (ctx) => {
      needsAttack(ctx);
      const port = (tcp.address() as { port: number }).port;
      const seen = tcpConnections;
      const r = await attack(["network", String(port), hostAddress, unixName]);
      expect(r).toEqual({
        tcp_host_loopback: "ECONNREFUSED", ...(hostAddress ? { tcp_host_address: "ENETUNREACH" } : {}),
        unix_abstract_host: "ECONNREFUSED", interfaces: "lo,",
      });
      expect(tcpConnections).toBe(seen);
    });

    it.skipIf(missing)("cannot see the caller's files outside its mounts: the test's temp dir, $HOME", async () => {
      const paths = [base, ...secrets, ...(homeMarker ? [homeMarker] : [])];
      const r = await sh(paths.map((p) => `test -e '${p}' && echo visible:${p}`).join("; ") + `; ls -A /root '${homedir()}'; true`);
      // Nothing visible; $HOME, if the rootfs has such a dir at all, is the rootfs's own (empty).
      expect(r.stdout.replace(/^\/.*:$/gm, "").trim()).toBe("");
    });

    it.skipIf(missing)("keyrings, bpf, userfaultfd, perf, kexec, modules and io_uring are refused as documented", async (ctx) => {
      needsAttack(ctx);
      const r = await attack(["seccomp"]);
      const enosys = ["io_uring_setup", "io_uring_enter", "io_uring_register"];
      for (const [name, outcome] of Object.entries(r)) expect(outcome, name).toBe(enosys.includes(name) ? "ENOSYS" : "EPERM");
      expect(Object.keys(r)).toHaveLength(20);
    });

    it.skipIf(missing || process.arch !== "x64")("the i386 (int 0x80) and x32 syscall ABIs are refused", async (ctx) => {
      needsAttack(ctx);
      expect(await attack(["abi"])).toEqual({ int80_getpid: "EPERM", int80_exit: "EPERM", x32_getpid: "EPERM" });
    });

    it.skipIf(missing)("holds exactly the documented capabilities, and the ones it lacks are refused", async (ctx) => {
      needsAttack(ctx);
      // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
      const documented = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31].reduce((mask, bit) => mask | (1n << BigInt(bit)), 0n);
      const hex = documented.toString(16).padStart(16, "0");
      expect(await attack(["caps"])).toEqual({
        CapInh: "0000000000000000", CapPrm: hex, CapEff: hex, CapBnd: hex, CapAmb: "0000000000000000",
        sethostname: "EPERM", settimeofday: "EPERM", setpriority_minus_20: "EACCES", set_lo_down: "EPERM",
        ambient_raise_sys_admin: "EPERM", capset_all: "EPERM",
      });
    });

    it.skipIf(missing)("/proc/sys, /proc/irq and /sys are not writable, and host sysctls stay as they were", async (ctx) => {
      needsAttack(ctx);
      const sysctl = readFileSync("/proc/sys/vm/overcommit_ratio", "utf8");
      const r = await attack(["proc"]);
      // Root inside is host root for no caller (a root caller's runs as ROOT_CALLER_ID), so the
      // kernel's own checks refuse, with no masks needed, and a fresh /proc nests (nested Castle).
      expect(r).toMatchObject({
        write_sysctl_vm: "EACCES", open_sysctl_kernel_w: "EACCES", open_irq_affinity_w: "EACCES", sys_exists: "ENOENT",
        nested_umount_proc_sys: "EINVAL", nested_mount_sysfs: "EPERM",
      });
      expect(r.open_sysrq_trigger_w).not.toBe("ok");
      expect(r.read_kcore).toMatch(/^(ENOENT|EACCES|EPERM|empty)$/);
      expect(r).toMatchObject({ nested_mount_proc: "ok", nested_proc_sysctl_w: "EACCES" });
      expect(readFileSync("/proc/sys/vm/overcommit_ratio", "utf8")).toBe(sysctl);
    });

    it.skipIf(missing)("its pid 1 shrugs off signals from inside, and nothing outlives the sandbox", async () => {
      // KILL and STOP from inside never reach init (the kernel protects a pid namespace's init);
      // other signals init forwards to the command, as an init should. Background, setsid'ed and
      // double-forked sleepers are all gone once the command exits.
      const marker = `4242.${process.pid % 1000}`;
      const r = await sh(
        "trap 'echo forwarded-TERM' TERM; trap 'echo forwarded-INT' INT; " +
          `sleep ${marker} & (setsid sleep ${marker} &) ; sh -c 'sleep ${marker} & exit' ; ` +
          "kill -KILL 1; kill -STOP 1; kill -TERM 1; sleep 0.1; kill -INT 1; sleep 0.1; " +
          "cut -d' ' -f3 /proc/1/stat; kill -0 1 && echo init-alive; ps -o args | grep -c '^sleep 4242'",
      );
      expect(r.stdout.split("\n")).toEqual(["forwarded-TERM", "forwarded-INT", "S", "init-alive", "3", ""]);
      expect(r.code).toBe(0);
      expect(await markedProcessesAfter(3000, `sleep\x00${marker}`)).toEqual([]);
    });

    it.skipIf(missing)("kill -9 -1 from inside reaches only the sandbox's own processes", async () => {
      const canary = spawnChild("sleep", ["30"], { stdio: "ignore", env: {}, ...(caller.asUser ?? {}) });
      try {
        const r = await sh("sleep 100 & sleep 100 & kill -9 -1; sleep 0.1; ps -o args | grep -c '^sleep 100'; echo survived");
        expect(r.stdout).toBe("0\nsurvived\n");
        expect(canary.exitCode).toBe(null);
        expect(canary.signalCode).toBe(null);
      } finally {
        canary.kill("SIGKILL");
      }
    });

    it.skipIf(missing)("a fork bomb stops at its limit, under a pids cgroup and under RLIMIT_NPROC alone", async (ctx) => {
      needsAttack(ctx);
      // `limits` gets a pids cgroup where Castle may make one (root here, for either caller: the
      // dir is given to the helper's user), else RLIMIT_NPROC, which counts per user namespace.
      // RLIMIT_NPROC alone binds a root caller's sandbox too: its root is no host root.
      const limit = 64;
      for (const spec of [{ limits: { pids: limit } }, { rlimits: { nproc: limit } }] satisfies Partial<SandboxSpec>[]) {
        const r = await attack(["forkbomb"], spec);
        expect(r.stopped, JSON.stringify(spec)).toBe("EAGAIN");
        expect(Number(r.forked)).toBeGreaterThan(0);
        expect(Number(r.forked)).toBeLessThan(limit);
      }
    });

    it.skipIf(missing)("cannot raise its own cgroup limits from a nested user+mount+cgroup namespace", async (ctx) => {
      needsAttack(ctx);
      // The sandbox gets cgroups of its own wherever Castle may make them (as root here: v1
      // pids, memory and cpu). Root inside is not host root, so the limit files stay the host's.
      const limits = { pids: 256, memoryBytes: 256 * 2 ** 20, cpus: 1 };
      const child = spawn({ root: { lowers: [rootfs] }, argv: ["/bin/attack", "cgroup", "hold"], env: ENV, limits }, { ...opts, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      const held = new Promise<void>((resolve) =>
        child.stdout?.on("data", (chunk: Buffer) => {
          out += chunk;
          if (out.includes("holding")) resolve();
        }),
      );
      const settled = child.wait();
      await Promise.race([held, settled]);
      const cgroups = child.limits?.cgroups ?? [];
      const hostValues = cgroups.flatMap((dir) =>
        ["pids.max", "memory.limit_in_bytes", "cpu.cfs_quota_us", "memory.max", "cpu.max"]
          .filter((file) => existsSync(join(dir, file)))
          .map((file) => `${file}=${readFileSync(join(dir, file), "utf8").trim()}`),
      );
      child.kill("SIGKILL");
      await settled;
      const r = results(out);
      expect(r.nested, out).toBeUndefined();
      for (const [name, outcome] of Object.entries(r)) if (name.startsWith("raise_")) expect(outcome, name).toMatch(/^(EACCES|EPERM|EROFS)$/);
      for (const name of ["pids", "memory", "cpu"]) if (r[`mount_${name}`] === "ok") expect(r[`raise_${name}`], name).toBeDefined();
      if (process.getuid?.() === 0 && cgroups.length > 0) {
        const expected: Record<string, string> = { "pids.max": "256", "memory.limit_in_bytes": String(256 * 2 ** 20), "memory.max": String(256 * 2 ** 20), "cpu.cfs_quota_us": "100000", "cpu.max": "100000 100000" };
        for (const line of hostValues) expect(line).toBe(`${line.split("=")[0]}=${expected[line.split("=")[0]!]}`);
      } else {
        console.warn(`no cgroup to attack for ${caller.name}: only the nested mounts were tried`);
      }
    });

    it.skipIf(missing)("a layer's symlinks cannot redirect the helper's mounts onto the host", async () => {
      // A hostile layer: its /tmp and /data are absolute symlinks that climb towards a host dir.
      // They resolve inside the new root, so the mounts land on the layer's own copy of that path.
      const victim = existsSync("/var/tmp") ? join("/var/tmp", `castle-victim-${tag}-${caller.uid}`) : join(base, `victim-${caller.uid}`);
      mkdirSync(victim, { mode: 0o777 });
      victims.push(victim);
      const hostile = (name: string, withTarget: boolean) => {
        const root = join(base, `${name}-${caller.uid}`);
        for (const dir of ["bin", "proc", "dev", ...(withTarget ? [victim.slice(1)] : [])]) mkdirSync(join(root, dir), { recursive: true, mode: 0o755 });
        copyFileSync(join(rootfs, "bin/busybox"), join(root, "bin/busybox"));
        for (const applet of ["sh", "cat", "ls"]) symlinkSync("busybox", join(root, "bin", applet));
        symlinkSync(`/../../../..${victim}`, join(root, "tmp"));
        symlinkSync(victim, join(root, "data"));
        execFileSync("chmod", ["-R", "a+rX", root]);
        return root;
      };
      const resolving = hostile("hostile", true);
      const r = await run(
        { root: { lowers: [resolving] }, mounts: [{ type: "tmpfs", target: "/data/sub" }], argv: ["/bin/sh", "-c", "echo x > /tmp/planted && ls /data/sub && echo inside"], env: ENV },
        opts,
      );
      expect(r).toMatchObject({ code: 0, stdout: "inside\n" });
      expect(readdirSync(victim)).toEqual([]);
      expect(readdirSync(join(resolving, victim))).toEqual([]);
      // Dangling links (nothing there inside the root): a clean setup error, nothing on the host.
      const dangling = hostile("dangling", false);
      for (const extra of [{}, { upper: ownedDir(base, `dangling-upper-${caller.uid}`, caller), work: ownedDir(base, `dangling-work-${caller.uid}`, caller) }]) {
        const error = await run({ root: { lowers: [dangling], ...extra }, argv: ["/bin/sh", "-c", "true"], env: ENV }, opts).catch((e: unknown) => e);
        expect(error).toMatchObject({ code: "CASTLE_SANDBOX_SETUP" });
        expect((error as Error).message).toMatch(/mount target \/tmp/);
      }
      expect(readdirSync(victim)).toEqual([]);
    });

    it.skipIf(missing)("an entered command meets the same walls", async (ctx) => {
      needsAttack(ctx);
      const box = spawn({ root: { lowers: [rootfs] }, argv: ["/bin/sleep", "1000"], env: ENV }, { ...opts, stdio: "ignore" });
      try {
        const { initPid } = await box.started;
        const inside = async (args: string[], extra: Partial<EnterSpec> = {}) => {
          const child = enter({ initPid }, { argv: ["/bin/attack", ...args], env: ENV, ...extra }, { ...opts, stdio: ["ignore", "pipe", "pipe"] });
          const [stdout, exit] = await Promise.all([text(child.stdout as Readable), child.wait()]);
          expect(exit.code).toBe(0);
          return results(stdout.replace(/\r/g, ""));
        };
        expect(await inside(["ptrace", String(process.pid)])).toMatchObject({ attach_host: "ESRCH", attach_init: "EPERM", init_fd0: "EACCES" });
        expect(await inside(["tty"], { tty: true })).toMatchObject({ tiocsti: "EPERM", tioclinux: "EPERM", tiocsti_dev_tty: "EPERM" });
        expect(await inside(["handles"])).toMatchObject({ open_by_handle_at: "EPERM", nested_open_by_handle_at: "EPERM" });
        const chroot = await inside(["chroot", ...secrets]);
        for (const [name, outcome] of Object.entries(chroot)) if (/_\d+$/.test(name)) expect(outcome, name).toMatch(/^(ENOENT|EACCES)$/);
        expect((await inside(["caps"])).CapBnd).toBe("00000000a80425fb");
        // Its parent (the joiner) is outside the sandbox's pid namespace: nothing to reach.
        const ps = enter({ initPid }, { argv: ["/bin/sh", "-c", "cut -d' ' -f4 /proc/$$/stat; ls /proc | grep -c '^[0-9]'"], env: ENV }, { ...opts, stdio: ["ignore", "pipe", "ignore"] });
        expect(await text(ps.stdout as Readable)).toBe("0\n5\n"); // init, sleep, sh, ls, grep
      } finally {
        box.kill("SIGKILL");
        await box.wait().catch(() => {});
      }
    });
  });

  it("left no mount and no temp dir on the host", () => {
    const changes = hostChanges(before);
    expect(changes.mounts).toEqual([]);
    expect(changes.tmp).toEqual([]);
  });
});
