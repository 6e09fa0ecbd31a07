/**
 * transformers.js lives in its own npm project, bench/transformersjs/ (its peer ranges conflict
 * with llamaindex's, and its onnxruntime-node must not share a process with this package's):
 * installed with `npm ci` from the committed lockfile on first use.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TRANSFORMERS_JS_DIR } from './paths.js';

/** The installed `@huggingface/transformers` version (installing it first if missing), or undefined if that failed. */
export function ensureTransformersJs(log: (line: string) => void): string | undefined {
  const pkg = join(TRANSFORMERS_JS_DIR, 'node_modules/@huggingface/transformers/package.json');
  if (!existsSync(pkg)) {
    log('installing transformers.js into bench/transformersjs (npm ci) ...');
    const r = spawnSync('npm', ['ci', '--prefix', TRANSFORMERS_JS_DIR, '--no-audit', '--no-fund'], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
    });
    if (r.status !== 0) log('npm ci failed: transformers.js rows will be missing');
  }
  return existsSync(pkg) ? (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version : undefined;
}
