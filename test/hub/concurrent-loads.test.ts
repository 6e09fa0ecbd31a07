/**
 * Two loads of the same model at once, into one empty cache: both succeed, each blob is downloaded
 * once (the second waits on the per-blob lock, then reuses the blob), and nothing temporary is left.
 * Once with two processes (what happens when two services start together), once within a process.
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3Model } from '../../src/index.js';
import { loadExpected, maxAbsDiff, TOL } from '../helpers.js';
import { startFakeHub, type FakeHub } from '../support/fake-hub.js';
import { childEnv, isolateHubEnv, type HubEnv } from './hub-env.js';

const run = promisify(execFile);
const CHILD = fileURLToPath(new URL('./helpers/load-child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BAAI_FILES = ['onnx/model.onnx', 'onnx/model.onnx_data', 'onnx/Constant_7_attr__value', 'tokenizer.json', 'config.json', 'colbert_linear.pt', 'sparse_linear.pt'];

let hub: FakeHub;
let env: HubEnv;
beforeAll(async () => {
  env = isolateHubEnv();
  hub = await startFakeHub();
  // Slow the big file down (~2 s) so the two loads really overlap.
  hub.faults.throttle = { file: 'onnx/model.onnx_data', chunk: 64 * 1024, everyMs: 60 };
});
afterAll(async () => {
  await hub?.stop();
  env?.restore();
});

function expectCleanCache(cacheDir: string): void {
  const blobs = readdirSync(join(cacheDir, 'models--BAAI--bge-m3', 'blobs'));
  expect(blobs.filter((n) => n.includes('.'))).toEqual([]);
  expect(readdirSync(join(cacheDir, '.locks', 'models--BAAI--bge-m3'))).toEqual([]);
}

describe('concurrent loads of one model into one cache', () => {
  it('two processes: both succeed, each file is downloaded once', async () => {
    const cacheDir = env.newCache();
    hub.resetLog();
    const text = loadExpected().texts[0]!;
    const child = () =>
      run(process.execPath, ['--import', 'tsx', CHILD, hub.url, cacheDir, 'BAAI/bge-m3', text.text], {
        cwd: ROOT,
        env: childEnv({}),
        timeout: 90_000,
      });
    const results = await Promise.all([child(), child()]);
    const outputs = results.map((r) => JSON.parse(r.stdout) as { dir: string; dense: number[] });
    for (const out of outputs) {
      expect(out.dir).toBe(outputs[0]!.dir);
      expect(maxAbsDiff(out.dense, text.dense)).toBeLessThan(TOL);
    }
    // Both processes listed the repo, but the bytes crossed the wire once.
    expect(hub.requests.filter((r) => r.url.startsWith('/api/'))).toHaveLength(2);
    for (const file of BAAI_FILES) expect(hub.contentGets(file), file).toHaveLength(1);
    // They overlapped: the second process asked about the big file while the first was fetching it.
    const heads = hub.requests.filter((r) => r.method === 'HEAD' && r.url.endsWith('/onnx/model.onnx_data'));
    expect(heads).toHaveLength(2);
    expect(heads[1]!.at).toBeLessThan(hub.contentGets('onnx/model.onnx_data')[0]!.end!);
    expectCleanCache(cacheDir);
  });

  it('two loads in one process: both succeed, each file is downloaded once', async () => {
    const cacheDir = env.newCache();
    hub.resetLog();
    const models = await Promise.all([1, 2].map(() => BgeM3Model.load('BAAI/bge-m3', { hubUrl: hub.url, cacheDir, onProgress: () => {} })));
    try {
      const text = loadExpected().texts[1]!;
      for (const m of models) {
        const { denseVecs } = await m.encode([text.text]);
        expect(maxAbsDiff(denseVecs![0]!, text.dense)).toBeLessThan(TOL);
      }
    } finally {
      await Promise.all(models.map((m) => m.dispose()));
    }
    for (const file of BAAI_FILES) expect(hub.contentGets(file), file).toHaveLength(1);
    expectCleanCache(cacheDir);
  });
});
