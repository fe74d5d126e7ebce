// validateSpec and serializeSpec: every bad field is named, and the wire format matches helper/spec.c.

import { describe, expect, it } from "vitest";
import { serializeEnterSpec, serializeSpec, validateEnterSpec, validateSpec, type SandboxSpec } from "../src/index";

const ok: SandboxSpec = { root: { lowers: ["/srv/rootfs"] }, argv: ["/bin/true"] };

function fieldOf(spec: unknown): string | undefined {
  try {
    validateSpec(spec as SandboxSpec);
    return undefined;
  } catch (error) {
    expect(error).toMatchObject({ code: "CASTLE_SANDBOX_SPEC" });
    return (error as { data: { field: string } }).data.field;
  }
}

describe("validateSpec", () => {
  it("accepts a minimal and a full spec", () => {
    expect(fieldOf(ok)).toBeUndefined();
    const full: SandboxSpec = {
      root: { lowers: ["/a", "/b"], upper: "/u", work: "/w" },
      mounts: [
        { type: "bind", source: "/host", target: "/mnt/host", readonly: true },
        { type: "overlay", target: "/srv", lowers: ["/l"] },
        { type: "tmpfs", target: "/scratch", sizeBytes: 1 << 20, mode: 0o1777 },
      ],
      argv: ["sh", "-c", "echo hi"], env: { PATH: "/bin" }, cwd: "/root", hostname: "h", uid: 0, gid: 0,
      network: "host", overlay: "kernel", tty: true, rlimits: { nofile: [64, 128], core: 0, cpu: Infinity },
      keepCaps: ["CAP_CHOWN"], cgroups: ["/sys/fs/cgroup/pids/castle", "/sys/fs/cgroup/memory/castle"], tmpSizeBytes: 1 << 30,
      limits: { pids: 64, memoryBytes: 1 << 29, cpus: 0.5, tmpBytes: 1 << 20, standIns: ["pids"] },
    };
    expect(fieldOf(full)).toBeUndefined();
  });

  it.each([
    [{ ...ok, root: { lowers: [] } }, "root.lowers"],
    [{ ...ok, root: { lowers: ["relative"] } }, "root.lowers[0]"],
    [{ ...ok, root: { lowers: Array.from({ length: 501 }, (_, i) => `/l/${i}`) } }, "root.lowers"],
    [{ ...ok, root: { lowers: ["/a"], upper: "/u" } }, "root.work"],
    [{ ...ok, root: { lowers: ["/a\0b"] } }, "root.lowers[0]"],
    [{ ...ok, argv: [] }, "argv"],
    [{ ...ok, argv: [""] }, "argv[0]"],
    [{ ...ok, argv: ["/bin/x", "a\0b"] }, "argv[1]"],
    [{ ...ok, env: { "A=B": "x" } }, "env.A=B"],
    [{ ...ok, cwd: "tmp" }, "cwd"],
    [{ ...ok, cwd: "/a/../b" }, "cwd"],
    [{ ...ok, hostname: "x".repeat(65) }, "hostname"],
    [{ ...ok, uid: -1 }, "uid"],
    [{ ...ok, network: "bridge" }, "network"],
    [{ ...ok, overlay: "zfs" }, "overlay"],
    [{ ...ok, mounts: [{ type: "bind", source: "host", target: "/x" }] }, "mounts[0].source"],
    [{ ...ok, mounts: [{ type: "tmpfs", target: "/" }] }, "mounts[0].target"],
    [{ ...ok, mounts: [{ type: "tmpfs", target: "/t", mode: 0o10000 }] }, "mounts[0].mode"],
    [{ ...ok, mounts: [{ type: "nfs", target: "/t" }] }, "mounts[0].type"],
    [{ ...ok, rlimits: { nofile: [10, 5] } }, "rlimits.nofile"],
    [{ ...ok, rlimits: { files: 1 } }, "rlimits.files"],
    [{ ...ok, keepCaps: ["CAP_GODMODE"] }, "keepCaps[0]"],
    [{ ...ok, cgroups: ["cg"] }, "cgroups[0]"],
    [{ ...ok, cgroups: Array.from({ length: 9 }, (_, i) => `/cg/${i}`) }, "cgroups"],
    [{ ...ok, tmpSizeBytes: -1 }, "tmpSizeBytes"],
    [{ ...ok, limits: { pids: 0 } }, "limits.pids"],
    [{ ...ok, limits: { memoryBytes: 1.5 } }, "limits.memoryBytes"],
    [{ ...ok, limits: { cpus: 0 } }, "limits.cpus"],
    [{ ...ok, limits: { standIns: ["cpus"] } }, "limits.standIns"],
    [{ ...ok, root: { lowers: ["/a"], volatile: true } }, "root.volatile"],
  ])("names the bad field %#", (spec, field) => {
    expect(fieldOf(spec)).toBe(field);
  });
});

describe("serializeSpec", () => {
  it("writes the header and ops as NUL-terminated strings", () => {
    const bytes = serializeSpec({
      root: { lowers: ["/a", "/b"], upper: "/u", work: "/w" },
      argv: ["sh", "-c", "echo"],
      env: { PATH: "/bin" },
      mounts: [{ type: "tmpfs", target: "/t" }, { type: "overlay", target: "/o", lowers: ["/l"] }],
      rlimits: { nofile: 64, cpu: [1, Infinity] },
      tty: true,
    });
    expect(bytes.toString("utf8").split("\0")).toEqual([
      "castle-sandbox-spec/1",
      "argv", "3", "sh", "-c", "echo",
      "env", "PATH=/bin",
      "tty",
      "rlimit", "nofile", "64", "64",
      "rlimit", "cpu", "1", "inf",
      "lower", "/a", "lower", "/b",
      "upper", "/u", "/w",
      "tmpfs", "/t", "0", "755",
      "overlay", "/o", "1", "/l", "", "",
      "net", "none",
      "",
    ]);
  });

  it("writes cgroup dirs (one op each) and the size of /tmp", () => {
    const bytes = serializeSpec({ ...ok, cgroups: ["/cg/pids/c", "/cg/memory/c"], tmpSizeBytes: 1 << 20 });
    const parts = bytes.toString("utf8").split("\0");
    expect(parts.slice(parts.indexOf("cgroup"), parts.indexOf("cgroup") + 4)).toEqual(["cgroup", "/cg/pids/c", "cgroup", "/cg/memory/c"]);
    expect(parts.slice(parts.indexOf("tmp-size"), parts.indexOf("tmp-size") + 2)).toEqual(["tmp-size", "1048576"]);
  });

  it("writes an enter spec: the command's ops, then enter <pid>", () => {
    const bytes = serializeEnterSpec({ initPid: 4242 }, { argv: ["sh"], env: { PATH: "/bin" }, cwd: "/tmp", tty: true });
    expect(bytes.toString("utf8").split("\0")).toEqual([
      "castle-sandbox-spec/1", "argv", "1", "sh", "env", "PATH=/bin", "cwd", "/tmp", "tty", "enter", "4242", "",
    ]);
  });

  it("checks an enter target and command, naming the bad field", () => {
    expect(() => validateEnterSpec({ initPid: 4242 }, { argv: ["sh"] })).not.toThrow();
    for (const [target, spec, field] of [
      [{ initPid: 0 }, { argv: ["sh"] }, "target.initPid"],
      [{ initPid: 1.5 }, { argv: ["sh"] }, "target.initPid"],
      [{ initPid: 4242 }, { argv: [] }, "argv"],
      [{ initPid: 4242 }, { argv: ["sh"], cwd: "rel" }, "cwd"],
      [{ initPid: 4242 }, { argv: ["sh"], uid: -1 }, "uid"],
      [{ initPid: 4242 }, { argv: ["sh"], keepCaps: ["CAP_NOPE"] }, "keepCaps[0]"],
    ] as const) {
      expect(() => validateEnterSpec(target, spec as never)).toThrow(expect.objectContaining({ code: "CASTLE_SANDBOX_SPEC", data: { field } }));
    }
  });

  it("defaults the environment to PATH only", () => {
    const parts = serializeSpec(ok).toString("utf8").split("\0");
    expect(parts.filter((part, i) => parts[i - 1] === "env")).toEqual([expect.stringMatching(/^PATH=\/usr\/local\/sbin:/)]);
  });
});
