// Owns the states a layer moves through while a system is built, and what each one knows. The
// scheduler (scheduler.ts) keeps one LayerRun per layer and moves it on; this file is the map:
//
//   waiting ──(its key's dependencies have output digests)──▶ resolving
//   resolving ──(key computed; store, then remotes asked)──▶ resolved(local | remote | missing)
//   resolved(missing) ──────────────────────────────────────▶ building
//   resolved(local)  ──(its tree is wanted)─────────────────▶ done(local)
//   resolved(remote) ──(its tree is wanted)─────────────────▶ pulling
//   pulling ──▶ done(pulled), or building when the pull fails (a warning; the layer is built)
//   building ──(the trees of its dependencies are done; its sources fetched; a build slot)──▶
//            done(built), or failed; or back to waiting when a dependency turned out different
//            from the digest its key was computed with (a rebuilt remote copy), to key it again
//   merge layers: waiting ──(every layer they compose is done)──▶ merged
//   any non-final state ──(a dependency failed, or the build stopped)──▶ skipped
//
// A layer's tree is "wanted" when the system's root composes it, or when a layer that is
// building needs it beneath its build root or at a mount. A resolved layer whose tree nobody
// wants stays resolved and is reported as not needed: everything that uses it is cached.

import type { KeyRecord, OutputDigest } from "@castle/cache";
import { knownDigest, type RemoteResolution, type Resolution } from "./resolve";

/** How a layer's tree came to be in the store in this run. */
export type Origin = "built" | "pulled" | "local";

export type LayerState =
  | { phase: "waiting" }
  | { phase: "resolving" }
  | { phase: "resolved"; resolution: Resolution }
  | { phase: "pulling"; resolution: RemoteResolution }
  /** `started`: its work was handed to a queue. `remoteDigest`: what a remote claimed the output
   * is, when its copy could not be fetched (not when it was refused as bad), to compare with. */
  | { phase: "building"; resolution: Resolution; started: boolean; remoteDigest?: OutputDigest }
  | { phase: "done"; resolution: Resolution; record: KeyRecord; origin: Origin }
  | { phase: "merged" }
  | { phase: "failed"; error: unknown }
  | { phase: "skipped"; because: string };

export type Phase = LayerState["phase"];

/** States no event moves on from. */
export function isFinal(state: LayerState): boolean {
  return state.phase === "done" || state.phase === "merged" || state.phase === "failed" || state.phase === "skipped";
}

/** A layer that will never have a tree in this run. */
export function isBlocked(state: LayerState): boolean {
  return state.phase === "failed" || state.phase === "skipped";
}

/** The output digest known in this state, for the keys of the layers that depend on it. */
export function digestIn(state: LayerState): OutputDigest | undefined {
  switch (state.phase) {
    case "resolved":
      return knownDigest(state.resolution);
    case "pulling":
      return state.resolution.manifest.digest;
    case "done":
      return state.record.digest;
    default:
      return undefined;
  }
}
