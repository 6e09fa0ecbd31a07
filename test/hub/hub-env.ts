/**
 * Test isolation for the hub: a temporary HF_HOME and cache, and none of the caller's hub variables
 * (a real HF_TOKEN or HF_HUB_OFFLINE must not change what the tests see). Never the real ~/.cache.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const HUB_VARS = [
  'HF_HOME',
  'HF_HUB_CACHE',
  'HUGGINGFACE_HUB_CACHE',
  'HF_TOKEN',
  'HUGGING_FACE_HUB_TOKEN',
  'HF_TOKEN_PATH',
  'HF_ENDPOINT',
  'HF_HUB_OFFLINE',
  'TRANSFORMERS_OFFLINE',
  'HF_HUB_DISABLE_PROGRESS_BARS',
  'XDG_CACHE_HOME',
];

export interface HubEnv {
  /** A temporary HF_HOME (set in process.env). */
  home: string;
  /** A fresh, empty cache dir under the temporary root. */
  newCache(): string;
  restore(): void;
}

export function isolateHubEnv(): HubEnv {
  const saved = Object.fromEntries(HUB_VARS.map((k) => [k, process.env[k]]));
  const root = mkdtempSync(join(tmpdir(), 'bge-m3-hub-test-'));
  for (const k of HUB_VARS) delete process.env[k];
  const home = join(root, 'hf-home');
  process.env.HF_HOME = home;
  let n = 0;
  return {
    home,
    newCache: () => join(root, `cache-${n++}`),
    restore() {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The environment for a child process: the parent's, minus hub variables, plus `extra`. */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of HUB_VARS) delete env[k];
  return { ...env, ...extra };
}
