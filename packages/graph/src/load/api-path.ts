// Owns finding the definition API module that a castle.ts's `import ... from "castle"` resolves
// to: the running Castle's own API, so that a definition repo needs no `npm install`.

import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CastleError } from "@castle/errors";

export function castleApiPath(env: NodeJS.ProcessEnv = process.env): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    env.CASTLE_API_PATH,
    join(here, "api.mjs"), // beside the bundled CLI (dist/)
    join(here, "../define/index.ts"), // running from source
  ];
  for (const candidate of candidates) if (candidate && existsSync(candidate)) return candidate;
  throw new CastleError("CASTLE_INSTALL", "cannot find Castle's definition API module", {
    hint: "reinstall Castle (npm ci / npm run build)",
    data: { searched: candidates.filter(Boolean) },
  });
}
