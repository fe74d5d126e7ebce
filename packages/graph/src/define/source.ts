// Owns the `source` namespace of the definition API: one entry per kind of source.

import { gitSource } from "./source-git";
import { httpSource } from "./source-http";
import { inlineSource } from "./source-inline";
import { localSource } from "./source-local";

/** Where a layer's inputs come from: http archives, git commits, local dirs, inline files. */
export const source = { http: httpSource, git: gitSource, local: localSource, inline: inlineSource };
