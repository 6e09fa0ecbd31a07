/**
 * The downloader under faults, against the fake hub: a corrupted byte is caught by the sha256
 * check and never cached; a connection dropped mid-file resumes with an HTTP Range request, within a
 * load (retries) or in the next one (the partial file is kept); a failing file leaves no trace in
 * the snapshot; 5xx answers are retried.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3Error, BgeM3Model } from '../../src/index.js';
import { resolveModelSource, type DownloadProgress } from '../../src/hub/index.js';
import { startFakeHub, type FakeHub } from '../support/fake-hub.js';
import { isolateHubEnv, type HubEnv } from './hub-env.js';
import { expectFixtureOutputs } from './model-check.js';

let hub: FakeHub;
let env: HubEnv;
const DATA = 'onnx/model.onnx_data';
const DATA_SIZE = 2_138_624;

beforeAll(async () => {
  env = isolateHubEnv();
  hub = await startFakeHub();
});
afterAll(async () => {
  await hub?.stop();
  env?.restore();
});
afterEach(() => {
  hub.faults = {};
});

const fast = { retryDelayMs: 10 };

function blobsDir(cacheDir: string): string {
  return join(cacheDir, 'models--BAAI--bge-m3', 'blobs');
}
function snapshot(cacheDir: string): string {
  return join(cacheDir, 'models--BAAI--bge-m3', 'snapshots', hub.repos.get('BAAI/bge-m3')!.commit);
}
const dataSha = () => hub.repos.get('BAAI/bge-m3')!.files.get(DATA)!.sha256;
const partials = (cacheDir: string) => readdirSync(blobsDir(cacheDir)).filter((n) => n.endsWith('.incomplete'));

async function loadAndCheck(cacheDir: string): Promise<void> {
  const model = await BgeM3Model.load('BAAI/bge-m3', { hubUrl: hub.url, cacheDir });
  try {
    await expectFixtureOutputs(model);
  } finally {
    await model.dispose();
  }
}

describe('verification', () => {
  it('a corrupted byte is detected by sha256 and the file is not cached', async () => {
    const cacheDir = env.newCache();
    hub.faults.corrupt = { file: DATA, byte: 1_000_000 };
    const err = await resolveModelSource('BAAI/bge-m3', { hubUrl: hub.url, cacheDir, download: fast }).catch((e) => e);
    expect(err).toBeInstanceOf(BgeM3Error);
    expect(err.code).toBe('DOWNLOAD_FAILED');
    expect(err.message).toContain(`onnx/model.onnx_data but its sha256 is`);
    expect(err.message).toContain(`instead of ${dataSha()}`);
    expect(err.message).toContain('not cached');
    // Neither the blob, nor a partial to resume from, nor a snapshot link.
    expect(existsSync(join(blobsDir(cacheDir), dataSha()))).toBe(false);
    expect(partials(cacheDir)).toEqual([]);
    expect(existsSync(join(snapshot(cacheDir), DATA))).toBe(false);
    // Files verified before the bad one stay cached; once the hub serves good bytes the load works.
    expect(existsSync(join(snapshot(cacheDir), 'onnx/model.onnx'))).toBe(true);
    hub.faults = {};
    hub.resetLog();
    await loadAndCheck(cacheDir);
    expect(hub.contentGets('onnx/model.onnx')).toHaveLength(0);
    expect(hub.contentGets(DATA)).toHaveLength(1);
  });

  it('a truncated answer (wrong size) is not cached either', async () => {
    const cacheDir = env.newCache();
    // The hub claims one size, the CDN sends fewer bytes and closes cleanly every time.
    hub.faults.drop = { file: DATA, afterBytes: 100_000 };
    const err = await resolveModelSource('BAAI/bge-m3', { hubUrl: hub.url, cacheDir, download: { ...fast, retries: 1 } }).catch((e) => e);
    expect(err.code).toBe('DOWNLOAD_FAILED');
    expect(existsSync(join(blobsDir(cacheDir), dataSha()))).toBe(false);
    expect(existsSync(join(snapshot(cacheDir), DATA))).toBe(false);
  });
});

describe('resume', () => {
  it('a connection dropped mid-file resumes with a Range request in the same load', async () => {
    const cacheDir = env.newCache();
    hub.faults.drop = { file: DATA, afterBytes: 1_200_000, times: 1 };
    hub.resetLog();
    const progress: DownloadProgress[] = [];
    await resolveModelSource('BAAI/bge-m3', { hubUrl: hub.url, cacheDir, download: fast, onProgress: (p) => progress.push(p) });
    const gets = hub.contentGets(DATA);
    expect(gets).toHaveLength(2);
    expect(gets[0]!.range).toBeUndefined();
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1]!.range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(1_200_000);
    const last = progress.filter((p) => p.file === DATA).at(-1)!;
    expect(last).toMatchObject({ done: true, loaded: DATA_SIZE, resumedFrom: resumedAt });
    expect(partials(cacheDir)).toEqual([]);
    await loadAndCheck(cacheDir);
  });

  it('an interrupted download is kept and the next load resumes it', async () => {
    const cacheDir = env.newCache();
    hub.faults.drop = { file: DATA, afterBytes: 700_000 };
    const err = await resolveModelSource('BAAI/bge-m3', { hubUrl: hub.url, cacheDir, download: { ...fast, retries: 0 } }).catch((e) => e);
    expect(err.code).toBe('DOWNLOAD_FAILED');
    expect(err.message).toContain('the next load resumes from there');
    const [partial] = partials(cacheDir);
    expect(partial).toBeDefined();
    const kept = statSync(join(blobsDir(cacheDir), partial!)).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(DATA_SIZE);

    hub.faults = {};
    hub.resetLog();
    await loadAndCheck(cacheDir);
    expect(hub.contentGets(DATA).map((r) => r.range)).toEqual([`bytes=${kept}-`]);
    expect(partials(cacheDir)).toEqual([]);
  });

  it('a server that ignores Range (200) restarts the file from scratch, still verified', async () => {
    const cacheDir = env.newCache();
    hub.faults.drop = { file: DATA, afterBytes: 500_000 };
    await resolveModelSource('BAAI/bge-m3', { hubUrl: hub.url, cacheDir, download: { ...fast, retries: 0 } }).catch(() => {});
    expect(partials(cacheDir)).toHaveLength(1);
    hub.faults = { ignoreRange: { file: DATA } };
    hub.resetLog();
    await loadAndCheck(cacheDir);
    const gets = hub.contentGets(DATA);
    expect(gets).toHaveLength(1);
    expect(gets[0]!.range).toMatch(/^bytes=\d+-$/); // asked to resume, got the whole file, verified it
    expect(partials(cacheDir)).toEqual([]);
  });

  it('an expired CDN link (403 mid-download) is replaced by asking the hub again, then resumed', async () => {
    const cacheDir = env.newCache();
    hub.faults.drop = { file: DATA, afterBytes: 600_000, times: 1 };
    // The CDN refuses the second request for the big file (the resume), as with an expired link.
    hub.faults.status = { match: new RegExp(`^/${dataSha()}\\?`), status: 403, skip: 1, times: 1 };
    hub.resetLog();
    await resolveModelSource('BAAI/bge-m3', { hubUrl: hub.url, cacheDir, download: fast });
    const heads = hub.requests.filter((r) => r.method === 'HEAD' && r.url.endsWith('/onnx/model.onnx_data'));
    expect(heads).toHaveLength(2); // the second asked for a fresh link
    const gets = hub.contentGets(DATA);
    expect(gets.map((g) => g.range !== undefined)).toEqual([false, true, true]);
    await loadAndCheck(cacheDir);
  });

  it('HTTP 5xx answers are retried', async () => {
    const cacheDir = env.newCache();
    hub.faults.status = { match: /^\/[0-9a-f]{64}\?/, status: 503, times: 2 };
    hub.resetLog();
    await resolveModelSource('BAAI/bge-m3', { hubUrl: hub.url, cacheDir, download: fast });
    expect(hub.faults.status?.times).toBe(0);
    await loadAndCheck(cacheDir);
  });
});
