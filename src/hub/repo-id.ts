/**
 * Tells a hub repo id (`BAAI/bge-m3`) from a local directory, with huggingface_hub's rules for valid
 * repo ids (`validate_repo_id`).
 */
import { existsSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { BgeM3Error } from '../errors.js';

const REPO_ID = /^(?:[\w][\w.-]{0,95}\/)?[\w][\w.-]{0,95}$/;

/** Whether `value` is shaped like a hub repo id (`org/name` or a legacy bare `name`). */
export function isRepoId(value: string): boolean {
  return REPO_ID.test(value) && !value.includes('--') && !value.includes('..') && !/[.-]$/.test(value) && !/[.-]\//.test(value);
}

/** What a `source` argument names. */
export type ModelSource = { kind: 'directory'; dir: string } | { kind: 'repo'; repo: string };

/**
 * An existing directory wins (so `./models/bge-m3` and `bge-m3` folders work as before); otherwise a
 * repo-id-shaped string is a repo; anything else is a directory that does not exist.
 */
export function classifySource(source: string, option = 'source'): ModelSource {
  if (typeof source !== 'string' || source.length === 0) {
    throw new BgeM3Error('INVALID_ARGUMENT', `${option} must be a model directory or a hub repo id such as "BAAI/bge-m3"; got ${source === '' ? 'an empty string' : typeof source}.`);
  }
  const dir = resolve(source);
  if (existsSync(dir) && statSync(dir).isDirectory()) return { kind: 'directory', dir };
  const pathLike = isAbsolute(source) || source.startsWith('.') || source.startsWith('~') || source.includes('\\');
  if (!pathLike && isRepoId(source)) return { kind: 'repo', repo: source };
  const what = option === 'source' ? 'Model directory' : `The ${option} directory`;
  throw new BgeM3Error(
    'MISSING_FILE',
    `${what} ${dir} does not exist or is not a directory, and ${JSON.stringify(source)} is not a hub repo id either. ` +
      'Pass the folder that holds the BGE-M3 export, or a repo id such as "BAAI/bge-m3".',
  );
}

/** huggingface_hub's `repo_folder_name`: `models--org--name`. */
export function repoFolderName(repo: string): string {
  return ['models', ...repo.split('/')].join('--');
}
