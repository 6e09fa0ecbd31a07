/**
 * Where the hub and its cache are, and whether we may connect: the options a caller passes, else the
 * same environment variables Python's `huggingface_hub` reads (`constants.py`), so both share one
 * cache and one configuration.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { BgeM3Error } from '../errors.js';

/** The options every hub-aware entry point accepts (`BgeM3Model.load` extends them). */
export interface HubOptions {
  /** Hub revision (branch, tag or 40-hex commit) when the source is a repo id. Default `'main'`. */
  revision?: string;
  /**
   * Hugging Face hub cache (shared with Python's huggingface_hub): the folder holding
   * `models--org--name`. Default: `HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
   */
  cacheDir?: string;
  /** Hub base URL (a mirror or a private hub). Default: `HF_ENDPOINT`, else `https://huggingface.co`. */
  hubUrl?: string;
  /** Token for private or gated repos. Default: `HF_TOKEN`, else the token `huggingface-cli login` saved. */
  token?: string;
  /**
   * Never open a connection: load from the cache or fail with a list of the missing files.
   * Default: `HF_HUB_OFFLINE=1`. Even when online, a repo whose files are all cached loads without
   * contacting the hub.
   */
  offline?: boolean;
}

/** {@link HubOptions} with every default applied. */
export interface HubSettings {
  revision: string;
  cacheDir: string;
  hubUrl: string;
  token: string | undefined;
  offline: boolean;
}

export const DEFAULT_HUB_URL = 'https://huggingface.co';
export const DEFAULT_REVISION = 'main';

type Env = Record<string, string | undefined>;

/** huggingface_hub's `_is_true`: `1`, `ON`, `YES`, `TRUE` in any case. */
export function envFlag(value: string | undefined): boolean {
  return value !== undefined && ['1', 'ON', 'YES', 'TRUE'].includes(value.trim().toUpperCase());
}

function nonEmpty(value: string | undefined): string | undefined {
  return value !== undefined && value.trim() !== '' ? value : undefined;
}

function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? join(homedir(), path.slice(1)) : path;
}

/** `HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`. */
export function hfHome(env: Env = process.env): string {
  const home = nonEmpty(env.HF_HOME) ?? join(nonEmpty(env.XDG_CACHE_HOME) ?? join(homedir(), '.cache'), 'huggingface');
  return resolve(expandHome(home));
}

/** The hub cache root: `HF_HUB_CACHE`, else the legacy `HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`. */
export function defaultCacheDir(env: Env = process.env): string {
  const dir = nonEmpty(env.HF_HUB_CACHE) ?? nonEmpty(env.HUGGINGFACE_HUB_CACHE);
  return dir ? resolve(expandHome(dir)) : join(hfHome(env), 'hub');
}

/**
 * The token Python would send: `HF_TOKEN`, else the legacy `HUGGING_FACE_HUB_TOKEN`, else the file
 * `huggingface-cli login` writes (`HF_TOKEN_PATH`, default `$HF_HOME/token`). Read locally only.
 */
export function defaultToken(env: Env = process.env): string | undefined {
  const fromEnv = nonEmpty(env.HF_TOKEN) ?? nonEmpty(env.HUGGING_FACE_HUB_TOKEN);
  if (fromEnv) return fromEnv.trim();
  const file = nonEmpty(env.HF_TOKEN_PATH) ? expandHome(env.HF_TOKEN_PATH!) : join(hfHome(env), 'token');
  try {
    return existsSync(file) ? nonEmpty(readFileSync(file, 'utf8').trim()) : undefined;
  } catch {
    return undefined; // An unreadable token file means "no token", as in huggingface_hub.
  }
}

/** Applies defaults and checks types; throws `INVALID_ARGUMENT` naming the bad option. */
export function resolveHubSettings(options: HubOptions = {}, env: Env = process.env): HubSettings {
  for (const key of ['revision', 'cacheDir', 'hubUrl', 'token'] as const) {
    const v = options[key];
    if (v !== undefined && (typeof v !== 'string' || v.length === 0)) {
      throw new BgeM3Error('INVALID_ARGUMENT', `${key} must be a non-empty string; got ${typeof v === 'string' ? 'an empty string' : typeof v}.`);
    }
  }
  if (options.offline !== undefined && typeof options.offline !== 'boolean') {
    throw new BgeM3Error('INVALID_ARGUMENT', `offline must be true or false; got ${typeof options.offline}.`);
  }
  const revision = options.revision ?? DEFAULT_REVISION;
  checkRevision(revision);
  const hubUrl = (options.hubUrl ?? nonEmpty(env.HF_ENDPOINT) ?? DEFAULT_HUB_URL).replace(/\/+$/, '');
  try {
    const u = new URL(hubUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    throw new BgeM3Error('INVALID_ARGUMENT', `hubUrl (or HF_ENDPOINT) must be an http(s) URL such as ${DEFAULT_HUB_URL}; got ${JSON.stringify(hubUrl)}.`);
  }
  return {
    revision,
    cacheDir: options.cacheDir ? resolve(expandHome(options.cacheDir)) : defaultCacheDir(env),
    hubUrl,
    token: options.token ?? defaultToken(env),
    offline: options.offline ?? (envFlag(env.HF_HUB_OFFLINE) || envFlag(env.TRANSFORMERS_OFFLINE)),
  };
}

/** Revisions become paths under `refs/`; refuse anything that could leave that folder. */
function checkRevision(revision: string): void {
  const bad = revision.split('/').some((part) => part === '' || part === '.' || part === '..') || /[\\\0]/.test(revision);
  if (bad) {
    throw new BgeM3Error('INVALID_ARGUMENT', `revision ${JSON.stringify(revision)} is not a valid branch, tag or commit name.`);
  }
}
