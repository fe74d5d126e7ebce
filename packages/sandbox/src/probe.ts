// Owns asking this machine what the sandbox can use: the helper's `--probe` tries a user
// namespace, a kernel overlay mount with userxattr and a fuse-overlayfs mount, and says why not.

import { execFile } from "node:child_process";
import { SandboxSetupError } from "./errors";
import { helperPath } from "./helper-path";

/** One feature: usable or not, and why not. */
export interface SandboxFeature {
  ok: boolean;
  reason: string | null;
}

export interface SandboxSupport {
  /** Unprivileged user namespaces (everything else needs them). */
  userNamespaces: SandboxFeature;
  /** Kernel overlayfs inside a user namespace with userxattr (>= 5.11): the fast overlay driver. */
  kernelOverlay: SandboxFeature;
  /** fuse-overlayfs installed and /dev/fuse usable: the fallback overlay driver. */
  fuseOverlay: SandboxFeature;
  /** /etc/subuid ranges plus newuidmap: uids other than 0 inside. */
  subordinateIds: SandboxFeature;
}

/**
 * What this machine supports, as seen by the given user (default: the caller).
 *
 * @example
 * const support = await probe();
 * if (!support.kernelOverlay.ok) console.warn(`no kernel overlay: ${support.kernelOverlay.reason}`);
 */
export function probe(options: { helperPath?: string; asUser?: { uid: number; gid: number } } = {}): Promise<SandboxSupport> {
  const helper = options.helperPath ?? helperPath();
  return new Promise((resolve, reject) => {
    execFile(
      helper,
      ["--probe"],
      { cwd: "/", ...(options.asUser ? { uid: options.asUser.uid, gid: options.asUser.gid } : {}) },
      (error, stdout) => {
        if (error) return reject(new SandboxSetupError(`castle-sandbox --probe failed: ${error.message}`, { cause: error }));
        try {
          resolve(JSON.parse(stdout) as SandboxSupport);
        } catch (cause) {
          reject(new SandboxSetupError("castle-sandbox --probe printed something that is not JSON", { cause }));
        }
      },
    );
  });
}
