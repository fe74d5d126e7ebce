// Owns the progress UI's public surface for the rest of the CLI: re-exports only. Nothing here may
// import ink or react (see progress.ts).
export { createProgress, chooseMode, type Progress, type ProgressMode, type ProgressOptions, type ModeInputs } from "./progress";
export { createPlainPrinter, type PlainPrinter, type PlainPrinterOptions } from "./plain-printer";
export { initialState, reduce, reduceAll, type ViewState, type LayerView, type LayerPhase, type FailureView } from "./view-state";
export { estimateProgress, type ProgressEstimate } from "./progress-estimate";
