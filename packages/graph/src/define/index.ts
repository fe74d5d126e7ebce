// The definition API: what a castle.ts imports as "castle".
export { layer, type LayerOptions, type ImportOptions, type MergeOptions } from "./layer";
export { system, type SystemOptions } from "./system";
export { source } from "./source";
export type { HttpSourceOptions } from "./source-http";
export type { GitSourceOptions } from "./source-git";
export type { LocalSourceOptions } from "./source-local";
export type { InlineFile } from "./source-inline";
export type { Layer, LayerRef, Source, System, Mountable } from "../types";
