// Owns the checks every definition function shares: names, absolute paths, string maps, and
// options the function does not take (a misspelling is an error naming the closest option).

import { posix } from "node:path";
import { didYouMean } from "./closest";
import type { SiteRef } from "./site";
import { DefinitionError } from "./errors";

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export function checkName(name: unknown, what: string, site: SiteRef): string {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new DefinitionError(
      `${what} name ${JSON.stringify(name)} is invalid: use 1-100 letters, digits, ".", "_" or "-", starting with a letter or digit`,
      site,
    );
  }
  return name;
}

/** A normalised absolute path inside the sandbox ("/src/musl"), never "/" itself. */
export function checkMountPath(path: string, what: string, site: SiteRef): string {
  if (typeof path !== "string" || !path.startsWith("/") || path.includes("\0")) {
    throw new DefinitionError(`${what} ${JSON.stringify(path)} must be an absolute path`, site);
  }
  const normal = posix.normalize(path).replace(/\/+$/, "");
  if (normal === "" || normal === "/") {
    throw new DefinitionError(`${what} cannot be "/"`, site);
  }
  if (normal.split("/").includes("..")) {
    throw new DefinitionError(`${what} ${JSON.stringify(path)} must not contain ".."`, site);
  }
  return normal;
}

export function checkStringMap(value: unknown, what: string, site: SiteRef): Record<string, string> {
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new DefinitionError(`${what} must be an object of strings`, site);
  }
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== "string") throw new DefinitionError(`${what}.${key} must be a string`, site);
    out[key] = v;
  }
  return out;
}

export function checkStrings(value: unknown, what: string, site: SiteRef): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
    throw new DefinitionError(`${what} must be an array of strings`, site);
  }
  return value as string[];
}

/**
 * The option names of an options type, checked by tsc to be all of them: a new option left out
 * of the list does not compile.
 */
export function optionNames<T>() {
  return <const L extends readonly (keyof T & string)[]>(
    names: L & ([Exclude<keyof T, L[number]>] extends [never] ? unknown : { missing: Exclude<keyof T, L[number]> }),
  ): readonly string[] => names;
}

/**
 * Refuses options the function does not take: `runDep: [...]` would otherwise be ignored and the
 * build fail later for a reason far from the typo.
 */
export function checkKnownOptions(options: unknown, known: readonly string[], what: string, site: SiteRef): void {
  if (typeof options !== "object" || options === null) return;
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    throw new DefinitionError(
      `${what}: unknown option "${key}"${didYouMean(key, known)}; the options are ${known.join(", ")}`,
      site,
      { option: key, known },
    );
  }
}
