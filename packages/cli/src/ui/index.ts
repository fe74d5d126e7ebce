// Owns the progress UI's public surface for the rest of the CLI: re-exports only. Nothing here may
// import ink or react (see reporter.ts).
export { createReporter, chooseMode, warmUpReporter, type Reporter, type ReporterMode, type ReporterOptions, type ModeInputs } from "./reporter";
export { createPlainReporter, type PlainReporter, type PlainReporterOptions } from "./plain-reporter";
export { initialState, reduce, reduceAll, type ViewState, type LayerView, type LayerPhase, type FailureView } from "./view-state";
export { estimateProgress, type ProgressEstimate } from "./progress-estimate";
