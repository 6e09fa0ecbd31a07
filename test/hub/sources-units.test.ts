/**
 * The model-source building blocks on their own: hub settings from options and the environment
 * (as huggingface_hub reads them), repo id vs directory, reading external-data references from an
 * ONNX graph, the cross-process lock, the cache's refs/markers, and progress formatting.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3Error } from '../../src/index.js';
import { acquireFileLock } from '../../src/hub/file-lock.js';
import { readGraphInfo } from '../../src/model/graph-info.js';
import { RepoCache } from '../../src/hub/hub-cache.js';
import { defaultCacheDir, formatProgressLine, resolveHubSettings, terminalProgress, type DownloadProgress } from '../../src/hub/index.js';
import { RateMeter } from '../../src/hub/progress.js';
import { classifySource, isRepoId, repoFolderName } from '../../src/hub/repo-id.js';
import { TINY_DIR, TINY_M3_DIR } from '../helpers.js';
import { inlinedGraph } from '../support/fake-hub.js';

const { onnx } = onnxProto;
let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'bge-m3-sources-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('hub settings', () => {
  it('finds the cache as huggingface_hub does: HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME, ~/.cache', () => {
    expect(defaultCacheDir({ HF_HUB_CACHE: '/a', HUGGINGFACE_HUB_CACHE: '/b', HF_HOME: '/c' })).toBe('/a');
    expect(defaultCacheDir({ HUGGINGFACE_HUB_CACHE: '/b', HF_HOME: '/c' })).toBe('/b');
    expect(defaultCacheDir({ HF_HOME: '/c', XDG_CACHE_HOME: '/x' })).toBe('/c/hub');
    expect(defaultCacheDir({ XDG_CACHE_HOME: '/x' })).toBe('/x/huggingface/hub');
    expect(defaultCacheDir({})).toBe(join(homedir(), '.cache', 'huggingface', 'hub'));
    expect(defaultCacheDir({ HF_HOME: '~/hf' })).toBe(join(homedir(), 'hf', 'hub'));
  });

  it('reads HF_ENDPOINT, HF_TOKEN (or the login token file), HF_HUB_OFFLINE; options win', () => {
    const home = join(tmp, 'home');
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, 'token'), 'hf_from_file\n');
    const fromEnv = resolveHubSettings({}, { HF_HOME: home, HF_ENDPOINT: 'http://mirror.local/', HF_HUB_OFFLINE: 'yes' });
    expect(fromEnv).toEqual({ revision: 'main', cacheDir: join(home, 'hub'), hubUrl: 'http://mirror.local', token: 'hf_from_file', offline: true });
    expect(resolveHubSettings({}, { HF_HOME: home, HF_TOKEN: 'hf_env' }).token).toBe('hf_env');
    expect(resolveHubSettings({}, { HF_HOME: home, HF_HUB_OFFLINE: '0' }).offline).toBe(false);
    expect(resolveHubSettings({}, { HF_HOME: home, TRANSFORMERS_OFFLINE: '1' }).offline).toBe(true);
    const explicit = resolveHubSettings(
      { revision: 'v2', cacheDir: '/c', hubUrl: 'https://hub.example', token: 't', offline: false },
      { HF_HOME: home, HF_ENDPOINT: 'http://x', HF_TOKEN: 'y', HF_HUB_OFFLINE: '1' },
    );
    expect(explicit).toEqual({ revision: 'v2', cacheDir: '/c', hubUrl: 'https://hub.example', token: 't', offline: false });
  });

  it('rejects bad options with INVALID_ARGUMENT naming them', () => {
    const bad = (o: object, match: string) => {
      const err = (() => {
        try {
          resolveHubSettings(o as never, {});
        } catch (e) {
          return e as BgeM3Error;
        }
      })();
      expect(err?.code).toBe('INVALID_ARGUMENT');
      expect(err?.message).toContain(match);
    };
    bad({ hubUrl: 'ftp://x' }, 'hubUrl');
    bad({ revision: '../../etc' }, 'revision');
    bad({ token: '' }, 'token');
    bad({ offline: 'yes' }, 'offline');
  });
});

describe('source: repo id or directory', () => {
  it('tells repo ids by huggingface_hub rules', () => {
    for (const id of ['BAAI/bge-m3', 'Xenova/bge-m3', 'bert-base-uncased', 'org/name.v1_2']) expect(isRepoId(id), id).toBe(true);
    for (const id of ['a/b/c', 'org--x/name', 'org/na..me', '-org/name', 'org/name-', '/abs', '']) expect(isRepoId(id), id).toBe(false);
    expect(repoFolderName('BAAI/bge-m3')).toBe('models--BAAI--bge-m3');
  });

  it('an existing directory wins over a repo-id-shaped name; a missing path is a clear error', () => {
    expect(classifySource(TINY_DIR)).toEqual({ kind: 'directory', dir: TINY_DIR });
    expect(classifySource('BAAI/bge-m3')).toEqual({ kind: 'repo', repo: 'BAAI/bge-m3' });
    const cwd = process.cwd();
    process.chdir(join(TINY_DIR, '..'));
    try {
      expect(classifySource('bge-m3-tiny').kind).toBe('directory');
    } finally {
      process.chdir(cwd);
    }
    expect(() => classifySource('./missing/dir')).toThrow(/does not exist or is not a directory/);
  });
});

describe('readGraphInfo', () => {
  it('reads the fixture graphs: external data and outputs', async () => {
    expect(await readGraphInfo(join(TINY_DIR, 'onnx/model.onnx'))).toEqual({
      externalData: ['model.onnx_data'],
      outputs: ['last_hidden_state'],
      embeddingRows: { word: 8002, position: 8194 },
    });
    expect(await readGraphInfo(join(TINY_M3_DIR, 'model.onnx'))).toEqual({
      externalData: [],
      outputs: ['dense_vecs', 'sparse_vecs', 'colbert_vecs'],
      embeddingRows: { word: 8002, position: 8194 },
    });
    const inline = join(tmp, 'inline.onnx');
    writeFileSync(inline, inlinedGraph());
    expect((await readGraphInfo(inline)).externalData).toEqual([]);
  });

  it('finds references in Constant attributes, subgraphs and sparse initializers', async () => {
    const ext = (name: string, location: string) => ({
      name,
      dims: [1],
      dataType: onnx.TensorProto.DataType.FLOAT,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: location },
        { key: 'offset', value: '0' },
      ],
    });
    const sub = { name: 'then', node: [], initializer: [ext('s', 'sub.bin')], output: [{ name: 's' }] };
    const model = onnx.ModelProto.encode({
      irVersion: 8,
      graph: {
        name: 'g',
        node: [
          { opType: 'Constant', output: ['c'], attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: ext('', 'Constant_7_attr__value') }] },
          { opType: 'If', input: ['cond'], output: ['y'], attribute: [{ name: 'then_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: sub }] },
        ],
        initializer: [ext('w', './model.onnx_data'), ext('w2', 'model.onnx_data')],
        sparseInitializer: [{ values: ext('v', 'sparse.bin'), indices: { name: 'i', dims: [1], dataType: 7, rawData: new Uint8Array(8) }, dims: [4] }],
        output: [{ name: 'y' }],
      },
    }).finish();
    const path = join(tmp, 'refs.onnx');
    writeFileSync(path, model);
    expect(await readGraphInfo(path)).toEqual({
      externalData: ['Constant_7_attr__value', 'sub.bin', 'model.onnx_data', 'sparse.bin'],
      outputs: ['y'],
      embeddingRows: {},
    });
  });

  it('refuses paths that leave the folder and truncated files', async () => {
    const model = onnx.ModelProto.encode({
      graph: {
        initializer: [{ name: 'w', dataLocation: 1, externalData: [{ key: 'location', value: '../../etc/passwd' }] }],
      },
    }).finish();
    const evil = join(tmp, 'evil.onnx');
    writeFileSync(evil, model);
    await expect(readGraphInfo(evil)).rejects.toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringContaining('../../etc/passwd') });
    const cut = join(tmp, 'cut.onnx');
    writeFileSync(cut, readFileSync(join(TINY_DIR, 'onnx/model.onnx')).subarray(0, 20_000));
    await expect(readGraphInfo(cut)).rejects.toMatchObject({ code: 'CORRUPT_FILE' });
  });
});

describe('file lock', () => {
  it('a second taker waits until the first releases', async () => {
    const path = join(tmp, 'locks', 'a.lock');
    const first = await acquireFileLock(path);
    expect(first).toBeDefined();
    let waitedFor: { pid?: number } | undefined;
    const second = acquireFileLock(path, { pollMs: 10, onWait: (o) => (waitedFor = o) });
    await new Promise((r) => setTimeout(r, 80));
    expect(waitedFor?.pid).toBe(process.pid);
    await first!.release();
    const lock = await second;
    expect(lock).toBeDefined();
    await lock!.release();
  });

  it('stops waiting when the work is done elsewhere', async () => {
    const path = join(tmp, 'locks', 'b.lock');
    const first = await acquireFileLock(path);
    let done = false;
    setTimeout(() => (done = true), 50);
    expect(await acquireFileLock(path, { pollMs: 10, isDone: () => done })).toBeUndefined();
    await first!.release();
  });

  it('breaks the lock of a dead process at once, and an untouched lock after staleMs', async () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    const path = join(tmp, 'locks', 'c.lock');
    writeFileSync(path, JSON.stringify({ pid: Number(dead), host: hostname() }));
    const started = performance.now();
    const lock = await acquireFileLock(path, { pollMs: 10 });
    expect(performance.now() - started).toBeLessThan(1000);
    await lock!.release();
    writeFileSync(path, JSON.stringify({ pid: 1, host: 'another-machine' }));
    const stale = await acquireFileLock(path, { pollMs: 10, staleMs: 100 });
    expect(stale).toBeDefined();
    await stale!.release();
  });
});

describe('RepoCache', () => {
  it('resolves refs (also with slashes) and commit hashes; reads .no_exist markers', async () => {
    const cache = new RepoCache(join(tmp, 'cache'), 'BAAI/bge-m3');
    const commit = 'b'.repeat(40);
    expect(cache.commitFor('main')).toBeUndefined();
    expect(cache.commitFor(commit)).toBe(commit);
    await cache.writeRef('refs/pr/1', commit);
    expect(readFileSync(join(cache.root, 'refs', 'refs', 'pr', '1'), 'utf8')).toBe(commit);
    expect(cache.commitFor('refs/pr/1')).toBe(commit);
    expect(cache.status(commit, 'colbert_linear.pt')).toBe('unknown');
    await cache.markAbsent(commit, 'colbert_linear.pt');
    expect(cache.status(commit, 'colbert_linear.pt')).toBe('absent');
    expect(readFileSync(join(cache.root, '.no_exist', commit, 'colbert_linear.pt'), 'utf8')).toBe('');
  });
});

describe('progress', () => {
  const p: DownloadProgress = { repo: 'BAAI/bge-m3', file: 'onnx/model.onnx_data', loaded: 512e6, total: 2.27e9, bytesPerSecond: 35.2e6, etaSeconds: 50, resumedFrom: 0, done: false };

  it('formats bytes, percentage, rate and ETA', () => {
    expect(formatProgressLine(p)).toBe('BAAI/bge-m3 onnx/model.onnx_data  512 MB / 2.27 GB  22%  35.2 MB/s  ETA 0:50');
    expect(formatProgressLine({ ...p, loaded: 2.27e9, done: true })).toBe('BAAI/bge-m3 onnx/model.onnx_data  2.27 GB / 2.27 GB  done');
  });

  it('draws on a terminal only, and not when HF_HUB_DISABLE_PROGRESS_BARS is set', () => {
    const writes: string[] = [];
    const tty = { isTTY: true, columns: 100, write: (s: string) => writes.push(s) } as unknown as NodeJS.WriteStream;
    const draw = terminalProgress(tty, {})!;
    draw(p);
    draw({ ...p, done: true });
    expect(writes[0]!.startsWith('\rBAAI/bge-m3 onnx/model.onnx_data')).toBe(true);
    expect(writes[1]!.endsWith('\n')).toBe(true);
    expect(terminalProgress({ ...tty, isTTY: false } as NodeJS.WriteStream, {})).toBeUndefined();
    expect(terminalProgress(tty, { HF_HUB_DISABLE_PROGRESS_BARS: '1' })).toBeUndefined();
  });

  it('measures the rate over a sliding window', () => {
    const m = new RateMeter(1000);
    m.add(0, 0);
    m.add(1000, 500);
    m.add(2000, 1000);
    expect(m.bytesPerSecond).toBe(2000);
    m.add(2000, 3000);
    expect(m.bytesPerSecond).toBe(0);
  });
});
