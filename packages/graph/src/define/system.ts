// Owns `system()`: the top of a definition, naming the layers that make up the running system.

import { SYSTEM_BRAND, isLayer, type LayerRef, type System } from "../types";
import { checkKnownOptions, checkMountPath, checkName, checkStringMap, checkStrings, optionNames } from "./checks";
import { DefinitionError } from "./errors";
import { describeName } from "./layer";
import { captureSite, withSite } from "./site";

export interface SystemOptions {
  /** The system's name: it keys its persistent state (home, /var...) across runs. */
  name: string;
  /** Layers composed, with their run dependencies, into the root; later ones win. */
  layers: LayerRef[];
  /** What `castle run` starts when no command is given. Default ["/bin/sh"]. */
  entrypoint?: string[];
  /** Environment of the entrypoint. Default { PATH, HOME: "/root", TERM from the caller }. */
  env?: Record<string, string>;
  /** Working directory of the entrypoint. Default "/root". */
  cwd?: string;
  /** Hostname inside. Default: the system's name. */
  hostname?: string;
  /**
   * Mount Castle into the running system (at /.castle, with `castle` on PATH), with the definition
   * it was started from at ~/castle-src and the edited sources at ~/src. Default true; false is
   * `castle run --no-castle` for every run.
   */
  castle?: boolean;
  /**
   * Sources to develop inside the system: `castle run` puts each one's pinned, verified files at
   * ~/src/<name> (once; later runs keep what is there) and every Castle build inside uses them,
   * as `castle edit <name>` does. Default [].
   */
  edit?: string[];
}

const SYSTEM_OPTIONS = optionNames<SystemOptions>()(["name", "layers", "entrypoint", "env", "cwd", "hostname", "castle", "edit"]);

/**
 * Declares a system: what `castle build` builds and `castle run` runs. A castle.ts file
 * default-exports one.
 *
 * @example
 * export default system({ name: "hello", layers: [hello], entrypoint: ["/bin/sh"] });
 * // develop the libc inside: its source at ~/src/musl-src, used by every build there
 * export default system({ name: "distro", layers: [musl, busybox], edit: ["musl-src"] });
 */
export function system(options: SystemOptions): System {
  const site = captureSite();
  if (typeof options !== "object" || options === null) {
    throw new DefinitionError("system() takes an options object", site);
  }
  checkKnownOptions(options, SYSTEM_OPTIONS, `system(${describeName(options.name)})`, site);
  const name = checkName(options.name, "system", site);
  if (!Array.isArray(options.layers) || options.layers.length === 0) {
    throw new DefinitionError(`system ${name}: layers must be a non-empty array`, site);
  }
  options.layers.forEach((ref, i) => {
    if (typeof ref !== "string" && !isLayer(ref)) {
      throw new DefinitionError(
        `system ${name}: layers[${i}] is ${ref === undefined ? "undefined (a missing dependency?)" : "not a layer"}`,
        site,
      );
    }
  });
  if (options.castle !== undefined && typeof options.castle !== "boolean") {
    throw new DefinitionError(`system ${name}: castle must be true or false`, site);
  }
  const edit = checkStrings(options.edit, `system ${name}: edit`, site);
  const entrypoint = options.entrypoint === undefined ? ["/bin/sh"] : checkStrings(options.entrypoint, `system ${name}: entrypoint`, site);
  if (entrypoint.length === 0) throw new DefinitionError(`system ${name}: entrypoint must not be empty`, site);
  return withSite({
    [SYSTEM_BRAND]: true as const,
    name,
    layers: [...options.layers],
    entrypoint,
    env: checkStringMap(options.env, `system ${name}: env`, site),
    cwd: options.cwd === undefined ? "/root" : checkMountPath(options.cwd, `system ${name}: cwd`, site),
    hostname: options.hostname ?? name,
    castle: options.castle ?? true,
    edit,
  }, site);
}

export function isSystemValue(value: unknown): value is System {
  return typeof value === "object" && value !== null && (value as System)[SYSTEM_BRAND] === true;
}
