/**
 * Regressions from the review of the model sources, against the fake hub:
 * - a server's ETag never becomes a path outside the cache (only 40/64-hex etags are accepted);
 * - `modelFile` (and any path the cache builds) cannot leave the cache;
 * - a lock whose owner is alive is never broken, a lock is released only by its owner, a partial
 *   download a live process may be writing is never adopted, and the file on disk is verified before
 *   it enters `blobs/`;
 * - `refs/<revision>` moves only once the new commit's files are all cached;
 * - hub HTTP errors (5xx, 401) fall back to a usable cached snapshot, as huggingface_hub does;
 *   "revision not found" does not.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3Error } from '../../src/index.js';
import { downloadBlob } from '../../src/hub/downloader.js';
import { acquireFileLock } from '../../src/hub/file-lock.js';
import { HubClient } from '../../src/hub/hub-client.js';
import { RepoCache } from '../../src/hub/hub-cache.js';
import { resolveModelSource } from '../../src/hub/index.js';
import { fakeRepo, startFakeHub, type FakeHub } from '../support/fake-hub.js';
import { isolateHubEnv, type HubEnv } from './hub-env.js';

let hub: FakeHub;
let env: HubEnv;
let tmp: string;
const REPO = 'BAAI/bge-m3';
const DATA = 'onnx/model.onnx_data';

beforeAll(async () => {
  env = isolateHubEnv();
  hub = await startFakeHub();
  tmp = mkdtempSync(join(tmpdir(), 'bge-m3-cache-safety-'));
});
afterAll(async () => {
  await hub?.stop();
  env?.restore();
  rmSync(tmp, { recursive: true, force: true });
});
afterEach(() => {
  hub.faults = {};
});

const quiet = { onProgress: () => {} };
const errorOf = (p: Promise<unknown>) => p.then(
  () => undefined,
  (e: unknown) => e as BgeM3Error,
);

/** Every file (and symlink) under `dir`, as absolute paths. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => !d.isDirectory())
    .map((d) => join(d.parentPath, d.name));
}

/** A cache folder nested a few levels deep in its own root, so `../` escapes land in `root`. */
function nestedCache(): { root: string; cacheDir: string } {
  const root = mkdtempSync(join(tmp, 'root-'));
  return { root, cacheDir: join(root, 'a', 'b', 'cache') };
}

describe('paths from the server or the options never leave the cache', () => {
  it('a malicious ETag is refused with DOWNLOAD_FAILED naming the file, and nothing is written outside', async () => {
    for (const [file, value] of [
      ['tokenizer.json', '../../../../evil.txt'], // a git (non-LFS) file: the ETag header
      ['onnx/model.onnx', '../../../../../evil.onnx'], // an LFS file: X-Linked-Etag
      ['tokenizer.json', 'A'.repeat(40)], // not lower-case hex
    ] as const) {
      const { root, cacheDir } = nestedCache();
      hub.faults.etag = { file, value };
      const err = await errorOf(resolveModelSource(REPO, { hubUrl: hub.url, cacheDir, ...quiet }));
      expect(err).toBeInstanceOf(BgeM3Error);
      expect(err!.code).toBe('DOWNLOAD_FAILED');
      expect(err!.message).toContain(`for ${REPO}/${file}`);
      expect(err!.message).toContain(JSON.stringify(value));
      expect(err!.message).toContain('neither a git sha1 (40 hex) nor a sha256 (64 hex)');
      const written = filesUnder(root);
      expect(written.filter((f) => !f.startsWith(cacheDir + sep))).toEqual([]);
      expect(written.filter((f) => f.includes('evil'))).toEqual([]);
      expect(existsSync(join(cacheDir, 'models--BAAI--bge-m3', 'refs', 'main'))).toBe(false);
    }
  });

  it('RepoCache refuses etags, commits and paths with separators or dot names', async () => {
    const cache = new RepoCache(join(tmp, 'units'), REPO);
    const commit = 'c'.repeat(40);
    for (const bad of ['../evil', '..', '.', '', 'a/b', 'a\\b']) {
      expect(() => cache.blobPath(bad), bad).toThrow(BgeM3Error);
      expect(() => cache.lockPath(bad), bad).toThrow(BgeM3Error);
      expect(() => cache.snapshotDir(bad), bad).toThrow(BgeM3Error);
    }
    for (const bad of ['../../x.onnx', 'onnx/../../x', '/abs.onnx', 'a//b', './a']) {
      expect(() => cache.snapshotPath(commit, bad), bad).toThrow(BgeM3Error);
      expect(() => cache.status(commit, bad), bad).toThrow(BgeM3Error);
      await expect(cache.markAbsent(commit, bad), bad).rejects.toThrow(BgeM3Error);
    }
    expect(cache.blobPath('a'.repeat(64))).toBe(join(cache.root, 'blobs', 'a'.repeat(64)));
    expect(existsSync(join(tmp, 'x.onnx'))).toBe(false);
  });

  it('a modelFile leaving the repo is INVALID_ARGUMENT for a repo source, before any request or marker', async () => {
    const { root, cacheDir } = nestedCache();
    hub.resetLog();
    const err = await errorOf(resolveModelSource(REPO, { hubUrl: hub.url, cacheDir, modelFile: '../../../../../outside.onnx', ...quiet }));
    expect(err?.code).toBe('INVALID_ARGUMENT');
    expect(err?.message).toContain('The modelFile option names the file "../../../../../outside.onnx"');
    expect(err?.message).toContain('e.g. "onnx/model.onnx"');
    expect(hub.requests).toHaveLength(0);
    expect(readdirSync(root)).toEqual([]);
    // A plain relative path still works.
    const ok = await resolveModelSource(REPO, { hubUrl: hub.url, cacheDir, modelFile: 'onnx/model.onnx', ...quiet });
    expect(ok.modelFile).toBe('onnx/model.onnx');
  });
});

describe('locks and partial downloads', () => {
  /** A live process (not this one) on this host, killed after the test. */
  function liveProcess(): { pid: number; kill: () => void } {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    return { pid: child.pid!, kill: () => child.kill() };
  }

  it('the lock of a live process on this host is never judged stale, however old', async () => {
    const live = liveProcess();
    try {
      const path = join(tmp, 'locks', 'live.lock');
      mkdirSync(join(tmp, 'locks'), { recursive: true });
      writeFileSync(path, JSON.stringify({ pid: live.pid, host: hostname(), token: 'theirs' }));
      const old = new Date(Date.now() - 3_600_000);
      utimesSync(path, old, old);
      let done = false;
      setTimeout(() => (done = true), 300);
      const got = await acquireFileLock(path, { pollMs: 10, staleMs: 50, isDone: () => done });
      expect(got).toBeUndefined(); // waited until the work was "done", never took the lock
      expect(JSON.parse(readFileSync(path, 'utf8')).token).toBe('theirs');
    } finally {
      live.kill();
    }
  });

  it('release removes only its own lock, not one another process took after breaking it', async () => {
    const path = join(tmp, 'locks', 'own.lock');
    const lock = await acquireFileLock(path);
    // Someone broke our lock and took it (as after a clock jump): theirs must survive our release.
    unlinkSync(path);
    const theirs = JSON.stringify({ pid: process.pid, host: hostname(), token: 'someone-else' });
    writeFileSync(path, theirs);
    await lock!.release();
    expect(readFileSync(path, 'utf8')).toBe(theirs);
    unlinkSync(path);
    const again = await acquireFileLock(path);
    await again!.release();
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(join(tmp, 'locks')).filter((n) => n.startsWith('own.lock'))).toEqual([]);
  });

  it("a live process's partial download is neither adopted nor deleted", async () => {
    const live = liveProcess();
    try {
      const cacheDir = env.newCache();
      const cache = new RepoCache(cacheDir, REPO);
      const client = new HubClient({ hubUrl: hub.url, token: undefined });
      const meta = await client.fileMetadata(REPO, hub.repos.get(REPO)!.commit, DATA);
      mkdirSync(join(cache.root, 'blobs'), { recursive: true });
      const theirs = join(cache.root, 'blobs', `${meta.etag}.${live.pid}-0badf00d.incomplete`);
      const bytes = hub.repos.get(REPO)!.files.get(DATA)!.data.subarray(0, 100_000);
      writeFileSync(theirs, bytes);
      hub.resetLog();
      await downloadBlob(cache, meta, { repo: REPO, file: DATA }, { headersFor: (u, e) => client.headersFor(u, e) });
      expect(hub.contentGets(DATA).map((r) => r.range)).toEqual([undefined]); // from scratch, not resumed
      expect(readFileSync(theirs)).toEqual(bytes);
      expect(cache.hasBlob(meta.etag, meta.size)).toBe(true);
    } finally {
      live.kill();
    }
  });

  it('a lock broken under a running download: the second download does not take over its file; both end with a verified blob', async () => {
    const cacheDir = env.newCache();
    const cache = new RepoCache(cacheDir, REPO);
    const client = new HubClient({ hubUrl: hub.url, token: undefined });
    const meta = await client.fileMetadata(REPO, hub.repos.get(REPO)!.commit, DATA);
    hub.faults.throttle = { file: DATA, chunk: 64 * 1024, everyMs: 20 };
    const opts = { headersFor: (u: string, e?: Record<string, string>) => client.headersFor(u, e), retries: 0 };
    const a = downloadBlob(cache, meta, { repo: REPO, file: DATA }, opts);
    await new Promise((r) => setTimeout(r, 200));
    unlinkSync(cache.lockPath(meta.etag)); // as if judged stale
    const b = downloadBlob(cache, meta, { repo: REPO, file: DATA }, opts);
    await Promise.all([a, b]);
    const blob = readFileSync(cache.blobPath(meta.etag));
    expect(createHash('sha256').update(blob).digest('hex')).toBe(meta.etag);
    expect(readdirSync(join(cache.root, 'blobs'))).toEqual([meta.etag]);
  });

  it('a file changed on disk during the download is caught before it enters blobs/', async () => {
    const cacheDir = env.newCache();
    const cache = new RepoCache(cacheDir, REPO);
    const client = new HubClient({ hubUrl: hub.url, token: undefined });
    const meta = await client.fileMetadata(REPO, hub.repos.get(REPO)!.commit, DATA);
    hub.faults.throttle = { file: DATA, chunk: 64 * 1024, everyMs: 20 };
    const done = downloadBlob(cache, meta, { repo: REPO, file: DATA }, { headersFor: (u, e) => client.headersFor(u, e), retries: 0 }).then(
      () => undefined,
      (e: unknown) => e as BgeM3Error,
    );
    const blobs = join(cache.root, 'blobs');
    // Another writer flips the first byte of the partial file once some bytes are in.
    for (let i = 0; i < 200; i++) {
      const partial = existsSync(blobs) ? readdirSync(blobs).find((n) => n.endsWith('.incomplete')) : undefined;
      if (partial && statSync(join(blobs, partial)).size > 200_000) {
        const fd = openSync(join(blobs, partial), 'r+');
        writeSync(fd, Buffer.from([0x42 ^ hub.repos.get(REPO)!.files.get(DATA)!.data[0]!]), 0, 1, 0);
        closeSync(fd);
        break;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    const err = await done;
    expect(err?.code).toBe('DOWNLOAD_FAILED');
    expect(err?.message).toContain(`${DATA} but its sha256 is`);
    expect(cache.hasBlob(meta.etag)).toBe(false);
  });
});

describe('refs and fallback to the cache', () => {
  it('an interrupted download of a new commit leaves refs/main on the complete older snapshot', async () => {
    const local = await startFakeHub();
    try {
      const cacheDir = env.newCache();
      const o = { hubUrl: local.url, cacheDir, ...quiet };
      const first = await resolveModelSource(REPO, o);
      const repo = local.repos.get(REPO)!;
      const v2 = fakeRepo(REPO, Object.fromEntries([...repo.files].map(([p, f]) => [p, p === DATA ? Buffer.concat([f.data, Buffer.from([1])]) : f.data])), { version: 2 });
      local.repos.set(REPO, v2);
      local.faults.drop = { file: DATA, afterBytes: 1000 };
      const err = await errorOf(resolveModelSource(REPO, { ...o, refresh: true, download: { retries: 0, retryDelayMs: 1 } }));
      expect(err?.code).toBe('DOWNLOAD_FAILED');
      const ref = join(cacheDir, 'models--BAAI--bge-m3', 'refs', 'main');
      expect(readFileSync(ref, 'utf8')).toBe(first.commit);
      expect((await resolveModelSource(REPO, { ...o, offline: true })).commit).toBe(first.commit);
      // Once the new commit is complete, the ref moves.
      local.faults = {};
      const second = await resolveModelSource(REPO, { ...o, refresh: true });
      expect(second.commit).toBe(v2.commit);
      expect(readFileSync(ref, 'utf8')).toBe(v2.commit);
    } finally {
      await local.stop();
    }
  });

  it('hub HTTP errors (503, 401) fall back to a usable cached snapshot; RevisionNotFound does not', async () => {
    const cacheDir = env.newCache();
    const o = { hubUrl: hub.url, cacheDir, ...quiet };
    const first = await resolveModelSource(REPO, o);
    // As a Python-written cache: an optional file never fetched, so the hub is asked.
    rmSync(join(first.dir, 'special_tokens_map.json'));
    hub.faults.status = { match: /^\/api\//, status: 503 };
    const r503 = await resolveModelSource(REPO, o);
    expect(r503.dir).toBe(first.dir);
    expect(r503.fallbackReason).toContain('HTTP 503');
    hub.faults.status = { match: /^\/api\//, status: 401 };
    const r401 = await resolveModelSource(REPO, { ...o, token: 'hf_expired' });
    expect(r401.dir).toBe(first.dir);
    // A HEAD failing with 500 during the plan falls back too.
    hub.faults.status = { match: /\/resolve\//, status: 500 };
    expect((await resolveModelSource(REPO, o)).dir).toBe(first.dir);
    hub.faults.status = { match: /^\/api\//, status: 404, errorCode: 'RevisionNotFound' };
    const err = await errorOf(resolveModelSource(REPO, o));
    expect(err?.message).toContain('Revision "main" of "BAAI/bge-m3" was not found');
    // Nothing usable cached: the hub error is reported.
    hub.faults.status = { match: /^\/api\//, status: 503 };
    const none = await errorOf(resolveModelSource(REPO, { ...o, cacheDir: env.newCache() }));
    expect(none?.message).toContain('HTTP 503');
  });
});
