/**
 * `BgeM3Model.load(repoId)` against a fake hub on 127.0.0.1: the first load downloads exactly the
 * files the layout needs into a Python-compatible cache and reproduces the fixture's outputs; later
 * loads need no server; offline mode never connects; dtype and heads choose the right files.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3Error, BgeM3Model } from '../../src/index.js';
import type { DownloadProgress } from '../../src/hub/index.js';
import { TINY_DIR } from '../helpers.js';
import { inlinedGraph, startFakeHub, type FakeHub } from '../support/fake-hub.js';
import { isolateHubEnv, type HubEnv } from './hub-env.js';
import { expectFixtureOutputs } from './model-check.js';

let hub: FakeHub;
let env: HubEnv;

beforeAll(async () => {
  env = isolateHubEnv();
  hub = await startFakeHub();
});
afterAll(async () => {
  await hub?.stop();
  env?.restore();
});

const models: BgeM3Model[] = [];
afterEach(async () => {
  await Promise.all(models.splice(0).map((m) => m.dispose()));
  hub.faults = {};
});

async function load(source: string, options: Parameters<typeof BgeM3Model.load>[1] = {}): Promise<BgeM3Model> {
  const model = await BgeM3Model.load(source, { hubUrl: hub.url, ...options });
  models.push(model);
  return model;
}

/** Every path under `dir`, relative, with `/` separators. */
function tree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (lstatSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p).split('\\').join('/'));
    }
  };
  walk(dir);
  return out.sort();
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const gitSha1 = (path: string) => {
  const data = readFileSync(path);
  return createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
};

const BAAI_NEEDED = [
  'colbert_linear.pt',
  'config.json',
  'onnx/Constant_7_attr__value',
  'onnx/model.onnx',
  'onnx/model.onnx_data',
  'sparse_linear.pt',
  'special_tokens_map.json',
  'tokenizer.json',
  'tokenizer_config.json',
];

describe('first load from the hub', () => {
  let cacheDir: string;
  const progress: DownloadProgress[] = [];

  beforeAll(async () => {
    cacheDir = env.newCache();
    hub.resetLog();
    await load('BAAI/bge-m3', { cacheDir, onProgress: (p) => progress.push(p) });
  });

  it('reproduces the fixture outputs (dense, sparse, ColBERT)', async () => {
    await expectFixtureOutputs(models.length ? models[0]! : await load('BAAI/bge-m3', { cacheDir }));
  });

  it('downloads exactly the files the layout needs, once each (not pytorch_model.bin or sentencepiece.bpe.model)', () => {
    const repo = hub.repos.get('BAAI/bge-m3')!;
    const snapshot = join(cacheDir, 'models--BAAI--bge-m3', 'snapshots', repo.commit);
    expect(tree(snapshot)).toEqual(BAAI_NEEDED);
    for (const file of BAAI_NEEDED) expect(hub.contentGets(file), file).toHaveLength(1);
    expect(hub.contentGets('pytorch_model.bin')).toHaveLength(0);
    expect(hub.contentGets('sentencepiece.bpe.model')).toHaveLength(0);
    // The repo was listed once, at the revision asked for; files were fetched at the listed commit.
    expect(hub.requests.filter((r) => r.url.startsWith('/api/'))).toHaveLength(1);
    expect(hub.requests.filter((r) => r.method === 'HEAD').every((r) => r.url.includes(`/resolve/${repo.commit}/`))).toBe(true);
  });

  it('lays the cache out as huggingface_hub does (refs, relative symlinks, blobs named by sha256 / git sha1)', () => {
    const repo = hub.repos.get('BAAI/bge-m3')!;
    const root = join(cacheDir, 'models--BAAI--bge-m3');
    expect(readFileSync(join(root, 'refs', 'main'), 'utf8')).toBe(repo.commit);
    for (const file of BAAI_NEEDED) {
      const link = join(root, 'snapshots', repo.commit, file);
      expect(lstatSync(link).isSymbolicLink(), file).toBe(true);
      const target = readlinkSync(link);
      expect(target.startsWith('../'), `${file} -> ${target} is relative`).toBe(true);
      const blob = realpathSync(link);
      expect(relative(join(root, 'blobs'), blob)).not.toContain('/');
      const f = repo.files.get(file)!;
      if (f.lfs) expect([blob.endsWith(f.sha256), sha256(blob)]).toEqual([true, f.sha256]);
      else expect([blob.endsWith(f.gitSha1), gitSha1(blob)]).toEqual([true, f.gitSha1]);
    }
    // Nothing half-done is left: no temporary files, no lock files.
    expect(tree(join(root, 'blobs')).filter((n) => n.includes('.'))).toEqual([]);
    expect(tree(join(cacheDir, '.locks'))).toEqual([]);
  });

  it('reports progress per file with sizes, ending with done', () => {
    const done = progress.filter((p) => p.done);
    expect(done.map((p) => p.file).sort()).toEqual(BAAI_NEEDED);
    const data = done.find((p) => p.file === 'onnx/model.onnx_data')!;
    expect(data).toMatchObject({ repo: 'BAAI/bge-m3', loaded: 2_138_624, total: 2_138_624, resumedFrom: 0 });
    for (const p of progress) expect(p.loaded).toBeLessThanOrEqual(p.total ?? Infinity);
  });

  it('loads again from the cache with the server stopped, and with offline mode without a single connection', async () => {
    const stopped = await startFakeHub();
    const deadUrl = stopped.url;
    await stopped.stop();
    const again = await load('BAAI/bge-m3', { cacheDir, hubUrl: deadUrl });
    await expectFixtureOutputs(again);

    hub.resetLog();
    const offline = await load('BAAI/bge-m3', { cacheDir, offline: true });
    await expectFixtureOutputs(offline, { sparse: true });
    process.env.HF_HUB_OFFLINE = '1';
    try {
      await load('BAAI/bge-m3', { cacheDir });
    } finally {
      delete process.env.HF_HUB_OFFLINE;
    }
    expect(hub.connections).toBe(0);
    expect(hub.requests).toHaveLength(0);
  });

  it('the default source is BAAI/bge-m3 and HF_ENDPOINT / HF_HUB_CACHE are honoured', async () => {
    process.env.HF_ENDPOINT = hub.url;
    process.env.HF_HUB_CACHE = cacheDir;
    hub.resetLog();
    try {
      const model = await BgeM3Model.load();
      models.push(model);
      expect(model.dir).toBe(join(cacheDir, 'models--BAAI--bge-m3', 'snapshots', hub.repos.get('BAAI/bge-m3')!.commit));
    } finally {
      delete process.env.HF_ENDPOINT;
      delete process.env.HF_HUB_CACHE;
    }
    expect(hub.connections).toBe(0); // complete in the cache: no network at all
  });
});

describe('offline mode with files missing', () => {
  it('fails without connecting, listing the missing files and how to fetch them', async () => {
    const cacheDir = env.newCache();
    hub.resetLog();
    const err = await load('BAAI/bge-m3', { cacheDir, offline: true }).catch((e) => e);
    expect(err).toBeInstanceOf(BgeM3Error);
    expect(err.code).toBe('MISSING_FILE');
    expect(err.message).toMatch(/offline/i);
    expect(err.message).toContain('onnx/model.onnx');
    expect(err.message).toContain('tokenizer.json');
    expect(err.message).toContain('npx bge-m3-rag download BAAI/bge-m3');
    expect(err.message).toContain('HF_HUB_OFFLINE');
    expect(hub.connections).toBe(0);
  });

  it('names the exact files missing from a partial cache', async () => {
    const cacheDir = env.newCache();
    await load('BAAI/bge-m3', { cacheDir });
    const commit = hub.repos.get('BAAI/bge-m3')!.commit;
    rmSync(join(cacheDir, 'models--BAAI--bge-m3', 'snapshots', commit, 'onnx', 'model.onnx_data'));
    hub.resetLog();
    const err = await load('BAAI/bge-m3', { cacheDir, offline: true }).catch((e) => e);
    expect(err.code).toBe('MISSING_FILE');
    expect(err.message).toContain('onnx/model.onnx_data (external data named by onnx/model.onnx)');
    expect(err.message).not.toContain('tokenizer.json');
    expect(hub.connections).toBe(0);
    // Online, only the missing file is fetched again (its blob is still cached: not even that).
    await load('BAAI/bge-m3', { cacheDir });
    expect(hub.contentGets()).toHaveLength(0);
  });
});

describe('a cache written by Python huggingface_hub', () => {
  it('is used as is: blobs + relative symlinks + refs/main, no .no_exist markers, no network', async () => {
    const cacheDir = env.newCache();
    const commit = 'a'.repeat(40);
    const root = join(cacheDir, 'models--BAAI--bge-m3');
    // What `huggingface-cli download BAAI/bge-m3 --include "onnx/*" "*.json" "*.pt"` leaves, by hand.
    const files: [string, string][] = [
      ['onnx/model.onnx', 'onnx/model.onnx'],
      ['onnx/model.onnx_data', 'onnx/model.onnx_data'],
      ['tokenizer.json', 'tokenizer.json'],
      ['tokenizer_config.json', 'tokenizer_config.json'],
      ['config.json', 'config.json'],
      ['colbert_linear.pt', 'colbert_linear.pt'],
      ['sparse_linear.pt', 'sparse_linear.pt'],
    ];
    mkdirSync(join(root, 'blobs'), { recursive: true });
    mkdirSync(join(root, 'refs'), { recursive: true });
    writeFileSync(join(root, 'refs', 'main'), commit);
    for (const [repoPath, fixturePath] of files) {
      const etag = sha256(join(TINY_DIR, fixturePath));
      cpSync(join(TINY_DIR, fixturePath), join(root, 'blobs', etag));
      const link = join(root, 'snapshots', commit, repoPath);
      mkdirSync(join(link, '..'), { recursive: true });
      symlinkSync(relative(join(link, '..'), join(root, 'blobs', etag)), link);
    }
    hub.resetLog();
    await expectFixtureOutputs(await load('BAAI/bge-m3', { cacheDir, offline: true }));
    expect(hub.connections).toBe(0);
    // Online but the hub unreachable: the cache has every required file, so it is used.
    const stopped = await startFakeHub();
    await stopped.stop();
    await expectFixtureOutputs(await load('BAAI/bge-m3', { cacheDir, hubUrl: stopped.url }), { sparse: true });
  });
});

describe('dtype and heads', () => {
  it("dtype 'q8' fetches onnx/model_quantized.onnx only, and heads from another repo", async () => {
    const cacheDir = env.newCache();
    hub.resetLog();
    const model = await load('Xenova/bge-m3', { cacheDir, dtype: 'q8', heads: 'BAAI/bge-m3' });
    await expectFixtureOutputs(model);
    const xenova = join(cacheDir, 'models--Xenova--bge-m3', 'snapshots', hub.repos.get('Xenova/bge-m3')!.commit);
    expect(tree(xenova)).toEqual(['config.json', 'onnx/model_quantized.onnx', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
    const baai = join(cacheDir, 'models--BAAI--bge-m3', 'snapshots', hub.repos.get('BAAI/bge-m3')!.commit);
    expect(tree(baai)).toEqual(['colbert_linear.pt', 'sparse_linear.pt']);
    expect(hub.contentGets('onnx/model.onnx_data')).toHaveLength(0);

    // The head files' absence from Xenova/bge-m3 was recorded (.no_exist, as huggingface_hub does),
    // so the cache alone now answers: no network on the next load.
    hub.resetLog();
    await expectFixtureOutputs(await load('Xenova/bge-m3', { cacheDir, dtype: 'q8', heads: 'BAAI/bge-m3' }));
    expect(hub.connections).toBe(0);
  });

  it("dtype 'fp16' picks onnx/model_fp16.onnx; without heads the model is dense-only with a clear error for sparse", async () => {
    const cacheDir = env.newCache();
    const model = await load('Xenova/bge-m3', { cacheDir, dtype: 'fp16' });
    await expectFixtureOutputs(model, {});
    expect(model.dir.endsWith(hub.repos.get('Xenova/bge-m3')!.commit)).toBe(true);
    const err = await model.encode(['x'], { returnSparse: true }).catch((e) => e);
    expect(err).toBeInstanceOf(BgeM3Error);
    expect(err.code).toBe('MISSING_FILE');
  });

  it('a heads-in-graph repo needs no head files', async () => {
    const cacheDir = env.newCache();
    hub.resetLog();
    const model = await load('test-org/bge-m3-m3', { cacheDir });
    expect(model.layout).toBe('heads');
    await expectFixtureOutputs(model);
    expect(hub.requests.filter((r) => r.url.includes('_linear.'))).toHaveLength(0);
  });

  it('a local directory without head files takes them from the heads repo', async () => {
    const dir = join(env.newCache(), 'local-model');
    for (const f of ['onnx/model.onnx', 'onnx/model.onnx_data', 'tokenizer.json', 'tokenizer_config.json', 'config.json']) {
      cpSync(join(TINY_DIR, f), join(dir, f), { recursive: true });
    }
    const cacheDir = env.newCache();
    await expectFixtureOutputs(await load(dir, { cacheDir, heads: 'BAAI/bge-m3' }));
    // And a directory of head files works as `heads` too.
    const headsDir = join(env.newCache(), 'heads');
    mkdirSync(headsDir, { recursive: true });
    for (const f of ['colbert_linear.pt', 'sparse_linear.pt']) cpSync(join(TINY_DIR, f), join(headsDir, f));
    hub.resetLog();
    await expectFixtureOutputs(await load(dir, { heads: headsDir }));
    expect(hub.connections).toBe(0);
  });

  it('dtype applies to local directories too', async () => {
    const dir = join(env.newCache(), 'local-q8');
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'config.json', 'colbert_linear.pt', 'sparse_linear.pt']) cpSync(join(TINY_DIR, f), join(dir, f));
    mkdirSync(join(dir, 'onnx'), { recursive: true });
    writeFileSync(join(dir, 'onnx', 'model_quantized.onnx'), inlinedGraph());
    await expectFixtureOutputs(await load(dir, { dtype: 'q8' }));
    const err = await load(dir).catch((e) => e);
    expect(err.code).toBe('MISSING_FILE');
    expect(err.message).toContain('onnx/model.onnx, model.onnx');
  });

  it('rejects an unknown dtype, naming the choices', async () => {
    const err = await load('BAAI/bge-m3', { cacheDir: env.newCache(), dtype: 'int4' as never }).catch((e) => e);
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain("'q8'");
  });
});

describe('errors from the hub', () => {
  it('a repo that does not exist', async () => {
    const err = await load('nobody/no-such-model', { cacheDir: env.newCache() }).catch((e) => e);
    expect(err).toBeInstanceOf(BgeM3Error);
    expect(err.code).toBe('DOWNLOAD_FAILED');
    expect(err.message).toContain('"nobody/no-such-model" was not found');
    expect(err.message).toContain('token');
  });

  it('a private repo: 401 without a token, works with one (which never reaches the CDN)', async () => {
    const cacheDir = env.newCache();
    const err = await load('test-org/private-bge-m3', { cacheDir }).catch((e) => e);
    expect(err.code).toBe('DOWNLOAD_FAILED');
    expect(err.message).toMatch(/HTTP 401/);
    expect(err.message).toMatch(/pass a token \(token option or HF_TOKEN\)/);

    const bad = await load('test-org/private-bge-m3', { cacheDir, token: 'hf_wrong' }).catch((e) => e);
    expect(bad.code).toBe('DOWNLOAD_FAILED');
    expect(bad.message).toContain('Invalid credentials');

    hub.resetLog();
    process.env.HF_TOKEN = (await import('../support/fake-hub.js')).FAKE_TOKEN;
    try {
      await expectFixtureOutputs(await load('test-org/private-bge-m3', { cacheDir }));
    } finally {
      delete process.env.HF_TOKEN;
    }
    expect(hub.requests.filter((r) => r.server === 'hub').every((r) => r.authorization?.startsWith('Bearer '))).toBe(true);
    expect(hub.requests.filter((r) => r.server === 'cdn').length).toBeGreaterThan(0);
    expect(hub.requests.filter((r) => r.server === 'cdn').every((r) => r.authorization === undefined)).toBe(true);
  });

  it('a dtype whose graph the repo lacks: MISSING_FILE naming the graphs it has', async () => {
    const err = await load('BAAI/bge-m3', { cacheDir: env.newCache(), dtype: 'fp16' }).catch((e) => e);
    expect(err.code).toBe('MISSING_FILE');
    expect(err.message).toContain('onnx/model_fp16.onnx');
    expect(err.message).toContain('ONNX graphs in the repo: onnx/model.onnx');
  });

  it('a file the listing has but the hub cannot serve (404 EntryNotFound)', async () => {
    hub.faults.status = { match: /\/resolve\/[0-9a-f]{40}\/onnx\/model\.onnx_data$/, status: 404, errorCode: 'EntryNotFound' };
    const err = await load('BAAI/bge-m3', { cacheDir: env.newCache() }).catch((e) => e);
    expect(err.code).toBe('MISSING_FILE');
    expect(err.message).toContain('"onnx/model.onnx_data"');
  });

  it('a heads repo without head files', async () => {
    const err = await load('Xenova/bge-m3', { cacheDir: env.newCache(), heads: 'test-org/bge-m3-m3' }).catch((e) => e);
    expect(err.code).toBe('MISSING_FILE');
    expect(err.message).toContain('colbert_linear.pt');
  });

  it('an unknown revision', async () => {
    const err = await load('BAAI/bge-m3', { cacheDir: env.newCache(), revision: 'v9' }).catch((e) => e);
    expect(err.code).toBe('DOWNLOAD_FAILED');
    expect(err.message).toContain('Revision "v9"');
  });

  it('an unreachable hub with nothing cached', async () => {
    const stopped = await startFakeHub();
    await stopped.stop();
    const err = await load('BAAI/bge-m3', { cacheDir: env.newCache(), hubUrl: stopped.url }).catch((e) => e);
    expect(err.code).toBe('DOWNLOAD_FAILED');
    expect(err.message).toContain('Could not reach');
    expect(err.message).toContain('HF_HUB_OFFLINE');
  });

  it('a source that is neither a directory nor a repo id', async () => {
    const err = await BgeM3Model.load('./no/such/dir').catch((e) => e);
    expect(err.code).toBe('MISSING_FILE');
    expect(err.message).toMatch(/Model directory .*no[\\/]such[\\/]dir does not exist.*not a hub repo id/);
  });
});
