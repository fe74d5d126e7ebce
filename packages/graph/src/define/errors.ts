// Owns the definition errors: what a user gets for a malformed call in castle.ts, pointing at
// the file and line where the bad value was declared.

import { CastleError } from "@castle/errors";
import type { SiteRef } from "./site";

/** A definition that cannot be right: bad option, bad name, bad path. */
export class DefinitionError extends CastleError {
  constructor(message: string, siteRef: SiteRef, data: Record<string, unknown> = {}) {
    const site = siteRef();
    super("CASTLE_DEFINITION", site ? `${site}: ${message}` : message, { data: { ...data, site } });
  }
}
