/** Folders the benchmark uses, relative to this checkout. */
import { fileURLToPath } from 'node:url';

/** Generated models (git-ignored). */
export const BENCH_MODELS_DIR = fileURLToPath(new URL('../.models', import.meta.url));
/** Committed results (`latest.json`, `latest.md`). */
export const RESULTS_DIR = fileURLToPath(new URL('../results', import.meta.url));
/** transformers.js lives in its own npm project (its peer ranges conflict with llamaindex's). */
export const TRANSFORMERS_JS_DIR = fileURLToPath(new URL('../transformersjs', import.meta.url));
/** The repository root. */
export const REPO_DIR = fileURLToPath(new URL('../..', import.meta.url));
