// @castle/graph: definitions, their loader, the validated layer graph, keys, the scheduler.
export type * from "./types";
export { LOG_TAIL_LINES } from "./types";
export * from "./define/index";
export { isLayer, isSource } from "./types";
export { closestMatches, didYouMean } from "./define/closest";
export { isSystemValue } from "./define/system";
export { loadDefinition, type LoadOptions, type LoadedDefinition } from "./load/load-definition";
export { castleApiPath } from "./load/api-path";
export type { DefinitionReads } from "./load/record/definition-reads";
export { statIdentity, isRacy, RACY_MS, type FileRead, type StatIdentity } from "./load/record/stat-identity";
export { buildGraph, runClosure, buildRootClosure, type LayerGraph, type LayerNode } from "./dag/graph";
export { layerKey, keyInputs, type KeyInputs, DEFAULT_BUILD_ENV } from "./hash/layer-key";
export { describeChanges, lastUse } from "./explain/explain";
export { buildSystem, type SchedulerOptions, type BuildOutcome } from "./schedule/scheduler";
export { defaultBuildLimits, resolveBuildLimits, type BuildLimitOverrides } from "./schedule/build-limits";
export { planSystem, type LayerPlan } from "./schedule/plan";
export type { SandboxRunner, SandboxProcess } from "./schedule/sandbox-runner";
export * from "./sources/index";
