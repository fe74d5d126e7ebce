// Owns the checks every definition function shares: names, absolute paths, string maps.

import { posix } from "node:path";
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
