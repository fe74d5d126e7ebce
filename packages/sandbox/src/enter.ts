// Owns entering a running sandbox (what `castle exec <instance> -- cmd` needs, like `docker
// exec`): validates the target and the command, writes the helper's spec with `enter <initPid>`
// (helper/enter.c joins the sandbox's namespaces) and returns the same handle as `spawn`.

import { startHelper, type SandboxProcess, type SpawnOptions } from "./helper-process";
import { serializeEnterSpec, validateEnterSpec } from "./spec";
import type { EnterSpec, EnterStarted, EnterTarget } from "./types";

/**
 * Runs `spec.argv` inside the running sandbox whose init is `target.initPid` (from the
 * sandbox's `started`). The command joins the sandbox's user, mount, pid, uts, ipc, network and
 * cgroup namespaces, sees its root, shows up in its `ps`, and is killed with the sandbox when
 * its init exits. Exit codes and options are those of {@link spawn} (`stdio`, `asUser`,
 * `helperPath`, `signal`); `started` resolves to the command's host pid.
 *
 * Throws CASTLE_SANDBOX_SPEC synchronously for a bad target or command; `wait()` and `started`
 * reject with CASTLE_SANDBOX_ENTER (`data.reason`: "no-such-process", "not-a-sandbox",
 * "permission-denied" or "exited") when the target cannot be entered.
 *
 * @example
 * const box = spawn({ root: { lowers: [rootfs] }, argv: ["/bin/sleep", "1000"] });
 * const { initPid } = await box.started;
 * const shell = enter({ initPid }, { argv: ["/bin/sh"], tty: true }, { stdio: "inherit" });
 * const { code } = await shell.wait();
 */
export function enter(target: EnterTarget, spec: EnterSpec, options: SpawnOptions = {}): SandboxProcess<EnterStarted> {
  validateEnterSpec(target, spec);
  return startHelper(serializeEnterSpec(target, spec), spec.argv, options, (event) => ({
    initPid: event.initPid ?? target.initPid,
    pid: event.pid ?? -1,
  }));
}
