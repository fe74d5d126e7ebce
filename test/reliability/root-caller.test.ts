// Reliability: Castle run as root, through the real `castle` binary. Root inside a root-started
// system is not host root (an unprivileged id, ROOT_CALLER_ID), yet its store is portable: the
// same definition built by root and by uid 65534 gives the same digests, a root store's files
// stay root's on disk (what root inside writes lands as uid 0, through idmapped views), and
// builds that modify files of lower layers (copy-up), chown and chmod work as for any user, and
// its systems nest like any user's: Castle inside runs them, at every level.

import { cpSync, lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ROOT_CALLER_ID } from "../../packages/sandbox/src/index";
import { busyboxMissing, makeBusyboxRootfs } from "../fixtures/rootfs";
import { cliMissing, describeRun, makeCliHome, runCastle } from "./helpers/cli";
import { useTempDirs, writeDefinition } from "./helpers/definitions";

const skip = cliMissing() ?? busyboxMissing() ?? (process.getuid?.() === 0 ? undefined : "Castle run as root needs the tests to run as root");
if (skip) console.warn(`skipping root-caller tests: ${skip}`);

const temp = useTempDirs("castle-rel-root");
let rootfs: string;
let def: string;
beforeAll(() => {
  if (skip) return;
  rootfs = makeBusyboxRootfs(temp("rootfs"));
  def = writeDefinition(temp("def"), {
    "castle.ts": `import { layer, source, system } from "castle";
const base = layer.import({ name: "base", from: source.local(${JSON.stringify(rootfs)}) });
const etc = layer({ name: "etc", runDeps: [base], script: "mkdir -p /etc/app && echo one > /etc/app/conf && chmod 600 /etc/app/conf" });
// Appends to a file of the layer below (a copy-up), chowns and chmods, deletes one of base's files.
const app = layer({ name: "app", runDeps: [etc], script: "echo two >> /etc/app/conf && chown 0:0 /etc/app/conf && chmod 640 /etc/app/conf && rm /bin/yes && touch /made" });
export default system({ name: "portable", layers: [app], entrypoint: ["/bin/sh"] });
`,
  });
});

/** Every entry under dir with an owner other than uid. */
function ownedByOthers(dir: string, uid: number): string[] {
  const out: string[] = [];
  const visit = (path: string) => {
    const st = lstatSync(path);
    if (st.uid !== uid) out.push(`${path} (uid ${st.uid})`);
    if (st.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
  };
  visit(dir);
  return out;
}

describe.skipIf(skip)("Castle run as root", () => {
  it("root inside is an unprivileged host id, and the system runs as it would for any user", async () => {
    const home = makeCliHome();
    const r = await runCastle(home, ["run", def, "--plain", "--", "/bin/sh", "-c", "id -u; cat /proc/self/uid_map; cat /etc/app/conf; ls /bin/yes 2>&1 || true"], { asCaller: true });
    expect(r.code, describeRun(r)).toBe(0);
    const [uid, map, ...rest] = r.stdout.trim().split("\n");
    expect(uid).toBe("0");
    expect(map!.trim().split(/\s+/)).toEqual(["0", String(ROOT_CALLER_ID), "1"]);
    expect(rest.join("\n")).toMatch(/^one\ntwo\nls: \/bin\/yes: No such file or directory$/);
  });

  it("nests like any user's system: Castle inside runs it again, and a Castle inside that one too", async () => {
    // Its base beside castle.ts, so that the definition works where Castle mounts it inside.
    const nest = writeDefinition(temp("nest"), {
      "castle.ts": `import { layer, source, system } from "castle";
const base = layer.import({ name: "base", from: source.local("./rootfs") });
const motd = layer({ name: "motd", runDeps: [base], script: "echo nested > /motd" });
export default system({ name: "nest", layers: [motd], entrypoint: ["/bin/sh"] });
`,
    });
    cpSync(rootfs, join(nest, "rootfs"), { recursive: true, verbatimSymlinks: true });
    const home = makeCliHome();
    const levels = `castle run --plain -- sh -c "castle run --plain -- sh -c 'cat /motd /proc/self/uid_map; exit 43'"`;
    const r = await runCastle(home, ["run", nest, "--plain", "--", "/bin/sh", "-c", levels], { asCaller: true });
    // A sandbox whose root is no host root covers nothing of its /proc: the next one mounts its own.
    expect(r.code, describeRun(r)).toBe(43);
    expect(r.stdout.split("\n")[0]).toBe("nested");
    expect(r.stdout.split("\n")[1]!.trim().split(/\s+/)).toEqual(["0", "0", "1"]);
  });

  it("a root store holds the same digests as a rootless one, and its files stay root's", async () => {
    const asRoot = makeCliHome();
    const asUser = makeCliHome();
    const rootBuild = await runCastle(asRoot, ["build", def, "--json"], { asCaller: true });
    const userBuild = await runCastle(asUser, ["build", def, "--json"]);
    expect(rootBuild.code, describeRun(rootBuild)).toBe(0);
    expect(userBuild.code, describeRun(userBuild)).toBe(0);
    const layers = (out: string) => {
      const parsed = JSON.parse(out) as { digest: string; layers: { name: string; key: string; digest: string; bytes: number }[] };
      return { digest: parsed.digest, layers: parsed.layers };
    };
    expect(layers(rootBuild.stdout)).toEqual(layers(userBuild.stdout));
    // Built in the sandbox and committed: on disk, root's (uid 0), not ROOT_CALLER_ID's.
    expect(ownedByOthers(join(asRoot.cache, "trees"), 0)).toEqual([]);
  });
});
