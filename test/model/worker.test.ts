/**
 * Where inference runs: in a worker thread by default (the event loop stays responsive even while a
 * long batch runs), or in the calling thread with `worker: false`; dispose while encoding; models
 * with a shorter position table; an undisposed model does not keep the process alive.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BgeM3Model } from '../../src/index.js';
import { copyFixture, largestTimerGap, loadExpected, maxAbsDiff, TINY_DIR } from '../helpers.js';

const tmpRoot = mkdtempSync(join(tmpdir(), 'bge-m3-worker-'));
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));

/** A long text: one batch of it keeps onnxruntime busy for a while even on the tiny model. */
const LONG = loadExpected().texts.find((t) => t.input_ids.length > 5000)!.text;

describe('inference worker', () => {
  it('keeps the event loop responsive while a long batch runs (and blocks it without the worker)', async () => {
    const texts = [LONG, LONG];
    const opts = { maxBatchTokens: 100_000, returnSparse: true, returnColbertVecs: true };
    // Unfused attention keeps each batch slow enough to measure, even on the tiny model.
    const inWorker = await BgeM3Model.load(TINY_DIR, { fuseAttention: false });
    const inThread = await BgeM3Model.load(TINY_DIR, { worker: false, fuseAttention: false });
    try {
      let a: Awaited<ReturnType<BgeM3Model['encode']>> | undefined;
      let b: typeof a;
      const blocked = await largestTimerGap(async () => (b = await inThread.encode(texts, opts)));
      const responsive = await largestTimerGap(async () => (a = await inWorker.encode(texts, opts)));
      // Same results either way.
      expect(maxAbsDiff(a!.denseVecs![0]!, b!.denseVecs![0]!)).toBeLessThan(1e-6);
      expect(a!.lexicalWeights).toEqual(b!.lexicalWeights);
      // The in-thread run stalls timers for the whole batch; the worker run does not.
      expect(blocked).toBeGreaterThan(150);
      expect(responsive).toBeLessThan(blocked / 3);
    } finally {
      await inWorker.dispose();
      await inThread.dispose();
    }
  });

  it('finishes batches already running when disposed, then refuses new work', async () => {
    const model = await BgeM3Model.load(TINY_DIR);
    const running = model.encode([LONG, 'short text'], { maxBatchTokens: 100_000 });
    const outcome = running.then(
      (v) => ({ ok: true as const, v }),
      (e) => ({ ok: false as const, e }),
    );
    await new Promise((r) => setTimeout(r, 5));
    await model.dispose();
    const settled = await outcome;
    // Either the encode finished before the sessions closed, or it failed with DISPOSED: never a raw onnxruntime error.
    if (settled.ok) expect(settled.v.denseVecs).toHaveLength(2);
    else expect(settled.e).toMatchObject({ code: 'DISPOSED' });
    await expect(model.encode(['x'])).rejects.toMatchObject({ code: 'DISPOSED' });
  });

  it('reports a worker that died as WORKER_FAILED', async () => {
    const model = await BgeM3Model.load(TINY_DIR);
    // Simulate a crash: terminate the worker thread behind the model's back.
    await (model as unknown as { backend: { worker: { terminate(): Promise<number> } } }).backend.worker.terminate();
    await expect(model.encode(['x'])).rejects.toMatchObject({ code: 'WORKER_FAILED', message: expect.stringMatching(/load it again/) });
    await model.dispose();
  });

  it('defaults lengths to the model position table when it is shorter than 8192', async () => {
    const dir = copyFixture(join(tmpRoot, 'short-positions'));
    for (const config of [join(dir, 'config.json'), join(dir, 'onnx', 'config.json')]) {
      const json = JSON.parse(readFileSync(config, 'utf8'));
      writeFileSync(config, JSON.stringify({ ...json, max_position_embeddings: 514 }));
    }
    const model = await BgeM3Model.load(dir);
    try {
      expect(model.maxPositions).toBe(512);
      const [ids] = await model.tokenize([LONG]);
      expect(ids).toHaveLength(512);
      const out = await model.encode([LONG], { returnColbertVecs: true });
      expect(out.colbertVecs![0]).toHaveLength(511);
      const scores = await model.computeScore([[LONG, LONG]]);
      expect(scores.dense[0]).toBeCloseTo(1, 5);
      await expect(model.encode(['x'], { maxLength: 513 })).rejects.toThrow(/exceeds the 512 tokens/);
    } finally {
      await model.dispose();
    }
  });

  it('does not keep the process alive when the model is never disposed', () => {
    const script = `
      import { BgeM3Model } from ${JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)};
      const model = await BgeM3Model.load(${JSON.stringify(TINY_DIR)});
      const out = await model.encode(['hello']);
      console.log(out.denseVecs[0].length);
    `;
    const stdout = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      timeout: 60_000,
      encoding: 'utf8',
    });
    expect(stdout.trim()).toBe('32');
  });
});
