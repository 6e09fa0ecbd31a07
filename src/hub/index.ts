/**
 * The Hugging Face hub client. Model sources: hub repo ids resolved through the Hugging Face cache (shared with Python's
 * huggingface_hub), with verified, resumable downloads and an offline mode.
 */
export { resolveModelSource, type ModelSourceOptions, type ResolveSourceOptions, type ResolvedModelSource, type DownloadedFile } from './resolve-source.js';
export { defaultCacheDir, resolveHubSettings, DEFAULT_HUB_URL, DEFAULT_REVISION, type HubOptions, type HubSettings } from './hub-settings.js';
export { formatBytes, formatProgressLine, terminalProgress, type DownloadProgress, type DownloadProgressCallback } from './progress.js';
export { isRepoId, repoFolderName } from './repo-id.js';
