// Sources: turning what a definition declares into content-addressed trees in the store, and a
// cheap identity for each to put in layer keys.
export type { SourceContext, SourceIdentity, SourcePhase, SourceProgress } from "./context";
export { SourceError, type SourceErrorCode } from "./errors";
export { sourceIdentity, sourceKey } from "./identity";
export { realizeSource, rememberLocalTree } from "./realize";
export { normaliseSourceName, parseOverrides } from "./overrides";
export { digestLocalDir, type LocalDigest, type LocalDigestOptions, type LocalEntry } from "./local-digest";
export { compileIgnore, type IgnoreMatcher } from "./ignore";
export { candidateUrls, parseMirrors, type MirrorRule } from "./mirrors";
export { fetchHttpFile } from "./http";
export { fetchGitCommit, resolveRef, type FetchGitCommitOptions, type GitCheckout, type GitRemoteOptions, type ResolvedRef } from "./git";
export { defaultGitHttp, type GitFs, type GitHttp } from "./git-client";
