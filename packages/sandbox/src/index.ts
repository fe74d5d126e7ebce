// Owns the public face of @castle/sandbox: re-exports only.

export type {
  EnforcedLimits, EnterSpec, EnterStarted, EnterTarget, LimitName, MountSpec, OverlayDriver, OverlaySpec, ResourceLimits,
  RlimitName, SandboxExit, SandboxSpec, SandboxStarted,
} from "./types";
export { spawn, run, type SpawnOptions, type RunOptions, type RunResult, type SandboxProcess } from "./spawn";
export { enter } from "./enter";
export { validateSpec, serializeSpec, validateEnterSpec, serializeEnterSpec, SPEC_LIMITS, DEFAULT_PATH, ROOT_CALLER_ID } from "./spec";
export { applyLimits, describeUnenforced, formatBytes, parseSize, type AppliedLimits } from "./limits";
export { helperPath } from "./helper-path";
export { processAlive } from "./process-alive";
export { probe, type SandboxSupport, type SandboxFeature } from "./probe";
export {
  SandboxSpecError,
  SandboxSetupError,
  SandboxNotFoundError,
  SandboxNotExecutableError,
  SandboxHelperMissingError,
  SandboxAbortedError,
  SandboxEnterError,
  type EnterFailure,
  errorFromStatus,
} from "./errors";
