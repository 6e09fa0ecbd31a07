/**
 * Downloads one file into the hub cache's `blobs/` folder so that only a complete, verified file
 * ever appears there:
 * - a per-blob lock file, so concurrent processes download a blob once (the others wait, then reuse);
 * - bytes go to `blobs/<etag>.<pid>-<random>.incomplete`, renamed to `blobs/<etag>` only after the
 *   size and the content hash of the file on disk match the etag (sha256 = the LFS oid, or the git
 *   blob sha1);
 * - an interrupted transfer resumes with an HTTP `Range` request, in the same run (a few retries
 *   with back-off) or in a later one (the `.incomplete` file of a dead process is adopted; never one
 *   that a live process may still be writing);
 * - progress: bytes, rate and ETA to a callback.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { mkdir, open, rename, truncate, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BgeM3Error } from '../errors.js';
import { acquireFileLock, isAlive } from './file-lock.js';
import { hubError, unreachable, type FileMetadata } from './hub-client.js';
import { uniqueSuffix, type RepoCache } from './hub-cache.js';
import { RateMeter, type DownloadProgressCallback } from './progress.js';
import { sleep } from '../shared/sleep.js';

export interface DownloadOptions {
  /** Request headers for a URL (the token goes only to the hub's origin). */
  headersFor: (url: string, extra?: Record<string, string>) => Record<string, string>;
  onProgress?: DownloadProgressCallback;
  /** Attempts after a dropped or stalled connection, each resuming where the last stopped. Default 5. */
  retries?: number;
  /** A connection that sends nothing for this long is dropped and retried. Default 30 s. */
  stallTimeoutMs?: number;
  /** First back-off between retries; doubles each time, up to 10 s. Default 500 ms. */
  retryDelayMs?: number;
  /**
   * A fresh download URL (re-asks the hub): CDN links are pre-signed and expire, so a retry that the
   * CDN refuses (401/403/410) gets a new one instead of failing.
   */
  relocate?: () => Promise<string>;
  /** The hub's origin; a 401/403/410 from any other origin (the CDN) means an expired link. */
  hubOrigin?: string;
  /** Called when another process is already downloading this file and we wait for it. */
  onWait?: (owner: { pid?: number; host?: string }) => void;
  signal?: AbortSignal;
}

/** A partial download is left alone while it changed this recently (a writer on another host may own it). */
const PARTIAL_FRESH_MS = 30_000;

/** `.incomplete` files this process is writing right now (never adopted by another download in it). */
const writing = new Set<string>();

/**
 * How a blob's content is checked against its etag (also used by `verify.ts` to re-check a cached
 * blob later: one hashing code path for downloads and verification).
 */
export type Verifier = { kind: 'sha256' | 'git-sha1'; hash: Hash } | { kind: 'none' };

/** The hash a blob named `etag` must have: sha256 for 64 hex, git blob sha1 (needs `size`) for 40 hex. */
export function newVerifier(etag: string, size: number | undefined): Verifier {
  if (/^[0-9a-f]{64}$/.test(etag)) return { kind: 'sha256', hash: createHash('sha256') };
  if (/^[0-9a-f]{40}$/.test(etag) && size !== undefined) {
    // A git blob id is sha1("blob <size>\0" + content).
    return { kind: 'git-sha1', hash: createHash('sha1').update(`blob ${size}\0`) };
  }
  return { kind: 'none' }; // An etag of another shape (a mirror's): the size is still checked.
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Read size of the streaming hash: memory stays at one chunk whatever the file's size. */
const HASH_CHUNK = 1 << 20;

/**
 * Feeds the first `bytes` of `path` into `hash`, streaming (bounded memory, any file size);
 * `onBytes` gets the running count after each chunk.
 */
export async function hashPrefix(path: string, bytes: number, hash: Hash, onBytes?: (hashed: number) => void): Promise<void> {
  if (bytes === 0) return;
  let hashed = 0;
  for await (const chunk of createReadStream(path, { start: 0, end: bytes - 1, highWaterMark: HASH_CHUNK })) {
    hash.update(chunk as Buffer);
    hashed += (chunk as Buffer).length;
    onBytes?.(hashed);
  }
}


/** A transfer failure worth retrying (connection dropped, stalled, refused, 5xx). */
class RetryableError extends Error {
  /** The CDN refused a (probably expired) pre-signed URL: ask the hub for a new one. */
  expiredUrl = false;
}

/**
 * Makes sure `blobs/<meta.etag>` holds the verified file, downloading (or resuming) it if needed.
 * `label` names the file in progress events and errors.
 */
export async function downloadBlob(cache: RepoCache, meta: FileMetadata, label: { repo: string; file: string }, options: DownloadOptions): Promise<void> {
  const blob = cache.blobPath(meta.etag);
  if (cache.hasBlob(meta.etag, meta.size)) return;
  await mkdir(dirname(blob), { recursive: true });
  const lock = await acquireFileLock(cache.lockPath(meta.etag), {
    isDone: () => cache.hasBlob(meta.etag, meta.size),
    onWait: options.onWait,
    signal: options.signal,
  });
  if (!lock) return; // Another process finished it while we waited.
  let temp: string | undefined;
  try {
    if (cache.hasBlob(meta.etag, meta.size)) return;
    temp = await adoptPartial(cache, meta.etag);
    writing.add(temp);
    await transfer(temp, meta, label, options);
    // What counts is the file on disk, not the bytes this process streamed: check it again.
    await verifyOnDisk(temp, meta, label);
    try {
      await rename(temp, blob);
    } catch (cause) {
      throw new BgeM3Error(
        'DOWNLOAD_FAILED',
        `Downloaded and verified ${label.repo}/${label.file} but could not move it into the cache (${temp} -> ${blob}): ${(cause as Error).message}. ` +
          'Check that the cache folder (cacheDir / HF_HUB_CACHE) is writable and not being cleaned by another program, then load again.',
        { cause },
      );
    }
  } finally {
    if (temp) writing.delete(temp);
    await lock.release();
  }
}

/** The pid in a partial's name (`<etag>.<pid>-<random>.incomplete`). */
function partialPid(path: string): number | undefined {
  const m = /\.(\d+)-[0-9a-f]+\.incomplete$/.exec(path);
  return m ? Number(m[1]) : undefined;
}

/**
 * Whether nobody can still be writing this partial: not one of ours in flight; of this process (a
 * download of it that failed earlier) or of a process that is gone, and not changed for a while
 * (its writer could be on another host sharing the cache, where a pid means nothing here).
 */
function isAbandoned(path: string): boolean {
  if (writing.has(path)) return false;
  const pid = partialPid(path);
  if (pid === process.pid) return true;
  if (pid !== undefined && isAlive(pid)) return false;
  try {
    return Date.now() - statSync(path).mtimeMs > PARTIAL_FRESH_MS;
  } catch {
    return false;
  }
}

/**
 * Reuses the largest abandoned unfinished download of this blob, under a fresh name of our own; the
 * other abandoned ones are deleted. A partial a live process may still be writing is never touched
 * (the lock could have been broken under it): its bytes would keep arriving in our file.
 */
async function adoptPartial(cache: RepoCache, etag: string): Promise<string> {
  const mine = join(dirname(cache.blobPath(etag)), `${etag}.${uniqueSuffix()}.incomplete`);
  const partials = (await cache.partials(etag)).filter(isAbandoned).sort((a, b) => fileSize(b) - fileSize(a));
  let adopted = false;
  for (const p of partials) {
    if (!adopted) {
      try {
        await rename(p, mine);
        adopted = true;
        continue;
      } catch {
        // Gone meanwhile: try the next one.
      }
    }
    await unlink(p).catch(() => {});
  }
  return mine;
}

/** Size and hash of the file on disk, just before it enters the cache; a mismatch deletes it. */
async function verifyOnDisk(temp: string, meta: FileMetadata, label: { repo: string; file: string }): Promise<void> {
  let size: number;
  try {
    size = statSync(temp).size;
  } catch (cause) {
    throw new BgeM3Error(
      'DOWNLOAD_FAILED',
      `Downloaded ${label.repo}/${label.file} but its temporary file ${temp} is gone (${(cause as Error).message}). ` +
        'Another program may be cleaning the cache folder (cacheDir / HF_HUB_CACHE); load again to retry.',
      { cause },
    );
  }
  const verifier = newVerifier(meta.etag, meta.size ?? size);
  if (verifier.kind !== 'none') await hashPrefix(temp, size, verifier.hash);
  await verify(temp, size, verifier, meta, label);
}

async function transfer(temp: string, metaIn: FileMetadata, label: { repo: string; file: string }, options: DownloadOptions): Promise<void> {
  let meta = metaIn;
  const retries = options.retries ?? 5;
  const stallMs = options.stallTimeoutMs ?? 30_000;
  let delay = options.retryDelayMs ?? 500;
  const rate = new RateMeter();
  let lastReport = 0;
  const report = (loaded: number, resumedFrom: number, done: boolean) => {
    if (!options.onProgress) return;
    const now = performance.now();
    if (!done && now - lastReport < 100) return;
    lastReport = now;
    rate.add(loaded, now);
    const bps = rate.bytesPerSecond;
    const left = meta.size !== undefined ? meta.size - loaded : undefined;
    options.onProgress({
      ...label,
      loaded,
      total: meta.size,
      bytesPerSecond: bps,
      etaSeconds: left !== undefined && bps > 0 ? left / bps : undefined,
      resumedFrom,
      done,
    });
  };

  for (let attempt = 0; ; attempt++) {
    options.signal?.throwIfAborted();
    let offset = fileSize(temp);
    if (meta.size !== undefined && offset > meta.size) {
      await truncate(temp, 0);
      offset = 0;
    }
    try {
      const check = { verifier: newVerifier(meta.etag, meta.size) };
      if (offset > 0 && check.verifier.kind !== 'none') await hashPrefix(temp, offset, check.verifier.hash);
      const complete = meta.size !== undefined && offset === meta.size;
      const finalSize = complete ? offset : await fetchInto(temp, offset, check, meta, label, options, stallMs, (n) => report(n, offset, false));
      await verify(temp, finalSize, check.verifier, meta, label);
      report(finalSize, offset, true);
      return;
    } catch (e) {
      if (!(e instanceof RetryableError) || attempt >= retries) {
        if (e instanceof RetryableError) {
          throw new BgeM3Error(
            'DOWNLOAD_FAILED',
            `Downloading ${label.repo}/${label.file} failed after ${attempt + 1} attempts: ${e.message}. ` +
              `The ${formatSize(fileSize(temp))} received so far are kept and the next load resumes from there.`,
            { cause: e.cause ?? e },
          );
        }
        throw e;
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 10_000);
      if (e.expiredUrl && options.relocate) meta = { ...meta, location: await options.relocate() };
    }
  }
}

function formatSize(bytes: number): string {
  return `${bytes.toLocaleString('en-US')} bytes`;
}

/** GETs the rest of the file from `offset`, appending to `temp`; returns the file's final size. */
async function fetchInto(
  temp: string,
  offset: number,
  /** The content check; replaced when the server restarts from byte 0. */
  check: { verifier: Verifier },
  meta: FileMetadata,
  label: { repo: string; file: string },
  options: DownloadOptions,
  stallMs: number,
  onBytes: (loaded: number) => void,
): Promise<number> {
  const controller = new AbortController();
  let stalled = false;
  let timer = setTimeout(() => ((stalled = true), controller.abort()), stallMs);
  const kick = () => {
    clearTimeout(timer);
    timer = setTimeout(() => ((stalled = true), controller.abort()), stallMs);
  };
  const signal = options.signal ? AbortSignal.any([controller.signal, options.signal]) : controller.signal;
  const rangeHeader: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
  try {
    let res: Response;
    let url = meta.location;
    try {
      res = await fetch(url, { headers: options.headersFor(url, rangeHeader), redirect: 'manual', signal });
      // Follow redirects ourselves so the token is dropped when the CDN is another origin.
      for (let hops = 0; res.status >= 300 && res.status < 400 && res.headers.get('location') && hops < 5; hops++) {
        url = new URL(res.headers.get('location')!, url).toString();
        res = await fetch(url, { headers: options.headersFor(url, rangeHeader), redirect: 'manual', signal });
      }
    } catch (cause) {
      options.signal?.throwIfAborted();
      throw new RetryableError(stalled ? `no response from ${new URL(url).origin} for ${stallMs / 1000} s` : unreachable(url, cause).message, { cause });
    }
    if (res.status === 416 && meta.size !== undefined && offset >= meta.size) return offset;
    let start = offset;
    if (res.status === 206) {
      const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      if (!m || Number(m[1]) !== offset) {
        await res.body?.cancel();
        await truncate(temp, 0);
        throw new RetryableError(`the server resumed at the wrong position (${res.headers.get('content-range') ?? 'no Content-Range'})`);
      }
    } else if (res.status === 200) {
      start = 0; // The server ignored the Range: start over.
    } else if (res.status === 416) {
      await res.body?.cancel();
      await truncate(temp, 0);
      throw new RetryableError('the server refused to resume (HTTP 416)');
    } else if (res.status === 429 || res.status >= 500) {
      await res.body?.cancel();
      throw new RetryableError(`the server answered HTTP ${res.status}`);
    } else if ([401, 403, 410].includes(res.status) && options.relocate && new URL(url).origin !== options.hubOrigin) {
      await res.body?.cancel();
      const e = new RetryableError(`the download link was refused (HTTP ${res.status}); it may have expired`);
      e.expiredUrl = true;
      throw e;
    } else {
      throw await hubError(res, { repo: label.repo, revision: meta.commit ?? '?', url, path: label.file, token: 'authorization' in options.headersFor(url) });
    }
    if (start === 0 && offset > 0) {
      await truncate(temp, 0);
      check.verifier = newVerifier(meta.etag, meta.size); // The prefix was hashed already: start the hash over too.
    }
    const verifier = check.verifier;
    const fh = await open(temp, start === 0 ? 'w' : 'a');
    let loaded = start;
    try {
      if (!res.body) throw new RetryableError('the response has no body');
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        kick();
        await fh.write(chunk);
        if (verifier.kind !== 'none') verifier.hash.update(chunk);
        loaded += chunk.byteLength;
        onBytes(loaded);
      }
    } catch (cause) {
      if (cause instanceof RetryableError) throw cause;
      options.signal?.throwIfAborted();
      if ((cause as NodeJS.ErrnoException).syscall) {
        // The disk, not the network (ENOSPC, EACCES, EROFS…): retrying will not help.
        throw new BgeM3Error(
          'DOWNLOAD_FAILED',
          `Cannot write ${temp} while downloading ${label.repo}/${label.file}: ${(cause as Error).message}. Free disk space or choose another cacheDir (HF_HUB_CACHE).`,
          { cause },
        );
      }
      throw new RetryableError(stalled ? `the connection stalled for ${stallMs / 1000} s` : `the connection broke after ${formatSize(loaded)}`, { cause });
    } finally {
      await fh.close();
    }
    if (meta.size !== undefined && loaded < meta.size) {
      throw new RetryableError(`the connection closed after ${formatSize(loaded)} of ${formatSize(meta.size)}`);
    }
    return loaded;
  } finally {
    clearTimeout(timer);
  }
}

/** Size and hash must match the hub's metadata, or the file is deleted and never enters the cache. */
async function verify(temp: string, size: number, verifier: Verifier, meta: FileMetadata, label: { repo: string; file: string }): Promise<void> {
  let problem: string | undefined;
  if (meta.size !== undefined && size !== meta.size) problem = `its size is ${size} bytes instead of ${meta.size}`;
  else if (verifier.kind !== 'none') {
    const actual = verifier.hash.digest('hex');
    if (actual !== meta.etag) problem = `its ${verifier.kind} is ${actual} instead of ${meta.etag}`;
  }
  if (!problem) return;
  // A corrupt file must not be resumed from either: delete it.
  await unlink(temp).catch(() => {});
  throw new BgeM3Error(
    'DOWNLOAD_FAILED',
    `Downloaded ${label.repo}/${label.file} but ${problem}, so it was discarded and not cached. ` +
      'The transfer or a proxy corrupted it; load again to retry.',
  );
}
