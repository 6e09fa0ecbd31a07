/**
 * The two hub calls this package makes, on Node's own `fetch`:
 * - `GET {hub}/api/models/{repo}/revision/{revision}`: the commit a revision points at and the
 *   repo's file list (so only the files a layout needs are fetched, never e.g. `pytorch_model.bin`);
 * - `HEAD {hub}/{repo}/resolve/{commit}/{path}`: a file's etag (sha256 for LFS files, git blob sha1
 *   otherwise), size and download location, read from the headers the hub sends
 *   (`X-Linked-Etag`, `X-Linked-Size`, `X-Repo-Commit`, the `Location` of the CDN redirect), as
 *   huggingface_hub's `get_hf_file_metadata` does.
 *
 * Why not `@huggingface/hub`: its `downloadFileToCacheDir` asks the network even for cached files
 * (unless given a commit hash), has no offline mode, no resume and no content verification, logs with
 * `console.*`, and pulls about 12 MB of dependencies; we need each of those the other way round.
 */
import { BgeM3Error } from '../errors.js';
import type { HubSettings } from './hub-settings.js';
import { BLOB_ETAG, COMMIT_HASH } from './hub-cache.js';

/** What the hub says about one revision of a repo. */
export interface RepoListing {
  /** The 40-hex commit the revision points at. */
  commit: string;
  /** Every file path in the repo at that commit. */
  files: Set<string>;
}

/** What the hub says about one file (huggingface_hub's `HfFileMetadata`). */
export interface FileMetadata {
  /** sha256 (LFS) or git blob sha1, quotes and `W/` removed. */
  etag: string;
  /** Bytes, when the hub told. */
  size: number | undefined;
  commit: string | undefined;
  /** Where to GET the bytes (the CDN for LFS files). */
  location: string;
}

/**
 * An HTTP error answer from the hub. `kind` tells the answers that are final whatever the cache
 * holds (the revision or file does not exist) from those a cached snapshot may stand in for (5xx,
 * 401/403, a repo that cannot be seen), as huggingface_hub falls back on them.
 */
export class HubHttpError extends BgeM3Error {
  constructor(
    code: 'DOWNLOAD_FAILED' | 'MISSING_FILE',
    message: string,
    readonly status: number,
    readonly kind: 'revision-not-found' | 'entry-not-found' | 'other',
  ) {
    super(code, message);
  }
}

/** A failure to reach the hub at all (DNS, refused, reset, timeout): the cache may still serve. */
export class HubUnreachableError extends BgeM3Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DOWNLOAD_FAILED', message, options);
  }
}

/** Quotes and the weak-validator prefix removed, as huggingface_hub's `_normalize_etag`. */
export function normalizeEtag(etag: string | null): string | undefined {
  if (!etag) return undefined;
  return etag.replace(/^W\//, '').replace(/^"|"$/g, '') || undefined;
}

/** `{hub}/{repo}/resolve/{revision}/{path}` with each part URL-encoded. */
export function resolveUrl(hubUrl: string, repo: string, revision: string, path: string): string {
  return `${hubUrl}/${repo}/resolve/${encodeURIComponent(revision)}/${path.split('/').map(encodeURIComponent).join('/')}`;
}

const OFFLINE_HINT = 'To use only the local cache, pass offline: true or set HF_HUB_OFFLINE=1.';

/** Turns a transport failure into a `HubUnreachableError` that names the host and what to do. */
export function unreachable(url: string, cause: unknown): HubUnreachableError {
  const c = cause as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  const detail = c?.name === 'TimeoutError' || c?.name === 'AbortError' ? 'timed out' : c?.cause?.code ?? c?.cause?.message ?? c?.message ?? String(cause);
  return new HubUnreachableError(
    `Could not reach ${new URL(url).origin} (${detail}) while fetching ${url}. Check the connection or the hubUrl option / HF_ENDPOINT. ${OFFLINE_HINT}`,
    { cause },
  );
}

export class HubClient {
  constructor(
    private readonly settings: Pick<HubSettings, 'hubUrl' | 'token'>,
    /** Timeout for the metadata calls (ms). */
    private readonly timeoutMs = 30_000,
  ) {}

  /**
   * Headers for a request to `url`: the token only goes to the hub's own origin, never to the CDN
   * a download is redirected to (those URLs are pre-signed).
   */
  headersFor(url: string, extra: Record<string, string> = {}): Record<string, string> {
    const headers: Record<string, string> = { 'user-agent': 'bge-m3-rag; node', 'accept-encoding': 'identity', ...extra };
    if (this.settings.token && new URL(url).origin === new URL(this.settings.hubUrl).origin) {
      headers.authorization = `Bearer ${this.settings.token}`;
    }
    return headers;
  }

  private async request(url: string, method: 'GET' | 'HEAD'): Promise<Response> {
    try {
      return await fetch(url, { method, headers: this.headersFor(url), redirect: 'manual', signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (cause) {
      throw unreachable(url, cause);
    }
  }

  /** The commit `revision` points at and the repo's files there. */
  async listRepo(repo: string, revision: string): Promise<RepoListing> {
    let url = `${this.settings.hubUrl}/api/models/${repo}/revision/${encodeURIComponent(revision)}`;
    let res = await this.request(url, 'GET');
    // A renamed repo answers with a relative redirect to its new name.
    for (let hops = 0; isRedirect(res.status) && hops < 5; hops++) {
      url = new URL(res.headers.get('location') ?? '', url).toString();
      res = await this.request(url, 'GET');
    }
    if (!res.ok) throw await hubError(res, { repo, revision, url, token: !!this.settings.token });
    let body: { sha?: unknown; siblings?: { rfilename?: unknown }[] };
    try {
      body = (await res.json()) as typeof body;
    } catch (cause) {
      throw new BgeM3Error('DOWNLOAD_FAILED', `${url} did not return JSON; is hubUrl (${this.settings.hubUrl}) a Hugging Face hub?`, { cause });
    }
    if (typeof body.sha !== 'string' || !COMMIT_HASH.test(body.sha) || !Array.isArray(body.siblings)) {
      throw new BgeM3Error('DOWNLOAD_FAILED', `${url} returned no commit "sha" or "siblings" list; is hubUrl (${this.settings.hubUrl}) a Hugging Face hub?`);
    }
    const files = new Set(body.siblings.map((s) => s.rfilename).filter((f): f is string => typeof f === 'string'));
    return { commit: body.sha, files };
  }

  /** `HEAD` on the file's resolve URL, following only same-site (renamed repo) redirects. */
  async fileMetadata(repo: string, revision: string, path: string): Promise<FileMetadata> {
    let url = resolveUrl(this.settings.hubUrl, repo, revision, path);
    let res = await this.request(url, 'HEAD');
    for (let hops = 0; isRedirect(res.status) && hops < 5; hops++) {
      const location = res.headers.get('location');
      if (!location) break;
      // As huggingface_hub: only a relative redirect (a renamed repo) is followed. An absolute one
      // points at the CDN, and the metadata is in this response's headers, not the CDN's.
      if (/^([a-z][a-z0-9+.-]*:|\/\/)/i.test(location)) break;
      url = new URL(location, url).toString();
      res = await this.request(url, 'HEAD');
    }
    if (!res.ok && !isRedirect(res.status)) throw await hubError(res, { repo, revision, url, path, token: !!this.settings.token });
    const etag = normalizeEtag(res.headers.get('x-linked-etag') ?? res.headers.get('etag'));
    if (!etag) {
      throw new BgeM3Error('DOWNLOAD_FAILED', `The hub sent no ETag for ${repo}/${path} (${url}), so the file cannot be verified or cached. Is hubUrl a Hugging Face hub?`);
    }
    // The etag names the blob on disk: only a git sha1 or a sha256 (what the hub sends) is accepted,
    // never something a server could use to write outside the cache.
    if (!BLOB_ETAG.test(etag)) {
      throw new BgeM3Error(
        'DOWNLOAD_FAILED',
        `The hub sent the ETag ${JSON.stringify(etag.slice(0, 100))} for ${repo}/${path} (${url}), which is neither a git sha1 (40 hex) nor a sha256 (64 hex), ` +
          'so the file cannot be verified or cached; refusing it. Check that hubUrl / HF_ENDPOINT points at a Hugging Face hub (or a faithful mirror).',
      );
    }
    const sizeHeader = res.headers.get('x-linked-size') ?? (isRedirect(res.status) ? null : res.headers.get('content-length'));
    const size = sizeHeader !== null && /^\d+$/.test(sizeHeader) ? Number(sizeHeader) : undefined;
    const location = isRedirect(res.status) && res.headers.get('location') ? new URL(res.headers.get('location')!, url).toString() : url;
    return { etag, size, commit: res.headers.get('x-repo-commit') ?? undefined, location };
  }
}

function isRedirect(status: number): boolean {
  return status >= 300 && status < 400 && status !== 304;
}

/** Maps a hub error response (and its `X-Error-Code`) to a `BgeM3Error` that says what to do. */
export async function hubError(
  res: Response,
  ctx: { repo: string; revision: string; url: string; path?: string; token: boolean },
): Promise<HubHttpError> {
  const code = res.headers.get('x-error-code') ?? '';
  const serverMessage = res.headers.get('x-error-message') ?? (await res.text().catch(() => '')).slice(0, 200);
  const said = serverMessage ? ` The hub said: "${serverMessage.trim()}".` : '';
  const status = `HTTP ${res.status}`;
  const { repo, revision, path } = ctx;
  if (code === 'RepoNotFound' || (res.status === 401 && code === '') || (res.status === 404 && !path && code === '')) {
    const auth = ctx.token
      ? 'If it is private or gated, check that your token (token option / HF_TOKEN) has access.'
      : 'If it is private or gated, pass a token (token option or HF_TOKEN).';
    return new HubHttpError('DOWNLOAD_FAILED', `Repository "${repo}" was not found on ${new URL(ctx.url).origin} (${status}). Check the repo id. ${auth}${said}`, res.status, 'other');
  }
  if (code === 'GatedRepo' || res.status === 403) {
    return new HubHttpError(
      'DOWNLOAD_FAILED',
      `Access to "${repo}" is restricted (${status}): accept its terms on the model page while logged in, then pass a token of that account (token option or HF_TOKEN).${said}`,
      res.status,
      'other',
    );
  }
  if (code === 'RevisionNotFound') {
    return new HubHttpError(
      'DOWNLOAD_FAILED',
      `Revision "${revision}" of "${repo}" was not found (${status}). Check the revision option (a branch, tag or commit).${said}`,
      res.status,
      'revision-not-found',
    );
  }
  if (code === 'EntryNotFound' || (res.status === 404 && path)) {
    return new HubHttpError('MISSING_FILE', `"${repo}" has no file "${path}" at revision "${revision}" (${status}).${said}`, res.status, 'entry-not-found');
  }
  if (res.status === 401) {
    return new HubHttpError(
      'DOWNLOAD_FAILED',
      `The hub refused the request for "${repo}" (${status}): the token is missing or invalid. Pass a valid token (token option or HF_TOKEN).${said}`,
      res.status,
      'other',
    );
  }
  return new HubHttpError(
    'DOWNLOAD_FAILED',
    `The hub answered ${status} for ${ctx.url}${res.status === 429 || res.status >= 500 ? '; it may be busy, try again later' : ''}.${said}`,
    res.status,
    'other',
  );
}
