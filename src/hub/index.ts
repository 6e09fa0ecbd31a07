/**
 * The Hugging Face hub client. Model sources: hub repo ids resolved through the Hugging Face cache (shared with Python's
 * huggingface_hub), with verified, resumable downloads, an offline mode, and re-verification of
 * cached files (`verify`).
 */
export { resolveModelSource, refetchFiles, type RefetchOptions, type ModelSourceOptions, type ResolveSourceOptions, type ResolvedModelSource, type DownloadedFile } from './resolve-source.js';
export { defaultCacheDir, resolveHubSettings, DEFAULT_HUB_URL, DEFAULT_REVISION, type HubOptions, type HubSettings } from './hub-settings.js';
export { formatBytes, formatProgressLine, terminalProgress, type DownloadProgress, type DownloadProgressCallback } from './progress.js';
export { isRepoId, repoFolderName } from './repo-id.js';
export { FileVerifier, MANIFEST_NAME, corruptFileError, parseManifest, snapshotTargets, type FileCheck, type FileStatus, type FileVerifierOptions, type VerifyTarget } from './verify.js';
