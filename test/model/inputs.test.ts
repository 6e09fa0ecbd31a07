/** Input validation and edge cases of the engine API: each gets a clear error or a defined result. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3Error, BgeM3Model } from '../../src/index.js';
import { loadExpected, TINY_DIR } from '../helpers.js';

describe('BgeM3Model inputs and edge cases', () => {
  let model: BgeM3Model;
  beforeAll(async () => {
    model = await BgeM3Model.load(TINY_DIR);
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('rejects non-string entries, naming the index', async () => {
    await expect(model.encode(['ok', 42 as unknown as string])).rejects.toThrow(/texts\[1\] is number 42/);
    await expect(model.encode('one text' as unknown as string[])).rejects.toThrow(/Wrap a single text in an array/);
    await expect(model.tokenize([null as unknown as string])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('returns empty outputs for an empty list', async () => {
    const out = await model.encode([], { returnSparse: true, returnColbertVecs: true });
    expect(out).toEqual({ denseVecs: [], lexicalWeights: [], colbertVecs: [] });
    expect(await model.tokenize([])).toEqual([]);
    expect(await model.computeScore([])).toEqual({ dense: [], sparse: [], colbert: [], 'sparse+dense': [], 'colbert+sparse+dense': [] });
  });

  it('encodes the empty string as <s></s>: no lexical weights, one ColBERT row (</s>)', async () => {
    expect(await model.tokenize([''])).toEqual([[0, 2]]);
    const out = await model.encode([''], { returnSparse: true, returnColbertVecs: true });
    expect(out.denseVecs![0]).toHaveLength(model.dim);
    expect(out.lexicalWeights![0]).toEqual({});
    expect(out.colbertVecs![0]).toHaveLength(1);
  });

  it('truncates past maxLength and keeps </s>', async () => {
    const long = loadExpected().texts.find((t) => t.input_ids.length > 1000)!.text;
    const [ids] = await model.tokenize([long], { maxLength: 10 });
    expect(ids).toHaveLength(10);
    expect(ids![0]).toBe(0);
    expect(ids![9]).toBe(2);
    const full = (await model.tokenize([long]))[0]!;
    expect(ids!.slice(0, 9)).toEqual(full.slice(0, 9));
    const out = await model.encode([long], { maxLength: 10, returnColbertVecs: true });
    expect(out.colbertVecs![0]).toHaveLength(9);
    // maxLength 2 keeps only the special tokens.
    expect(await model.tokenize([long], { maxLength: 2 })).toEqual([[0, 2]]);
  });

  it('rejects maxLength < 2, non-integers and lengths past the position table', async () => {
    for (const bad of [1, 0, -5, 2.5, Number.NaN]) {
      await expect(model.encode(['x'], { maxLength: bad })).rejects.toThrow(/maxLength must be an integer >= 2/);
    }
    await expect(model.encode(['x'], { maxLength: 8193 })).rejects.toThrow(/exceeds the 8192 tokens/);
    await expect(model.computeScore([['q', 'p']], { maxQueryLength: 1 })).rejects.toThrow(/maxQueryLength/);
    await expect(model.encode(['x'], { batchSize: 0 })).rejects.toThrow(/batchSize must be an integer >= 1/);
  });

  it('rejects a weights array of the wrong length or with a zero sum', async () => {
    await expect(model.computeScore([['q', 'p']], { weightsForDifferentModes: [0.5, 0.5] })).rejects.toThrow(
      /weightsForDifferentModes must be three finite numbers/,
    );
    await expect(model.computeScore([['q', 'p']], { weightsForDifferentModes: [0, 0, 0] })).rejects.toThrow(/may not sum to 0/);
    // ColBERT only (the paper's multi-vector mode) is allowed; 'sparse+dense' is 0/0 as in FlagEmbedding.
    const colbertOnly = await model.computeScore([['q', 'p']], { weightsForDifferentModes: [0, 0, 1] });
    expect(colbertOnly['colbert+sparse+dense'][0]).toBeCloseTo(colbertOnly.colbert[0]!, 6);
    expect(colbertOnly['sparse+dense'][0]).toBeNaN();
    await expect(model.computeScore([['q'] as unknown as [string, string]])).rejects.toThrow(/pairs\[0\] must be \[query: string, passage: string\]/);
  });

  it('scores with default weights [1, 1, 1] as plain averages', async () => {
    const s = await model.computeScore([['What is BGE M3?', 'BGE M3 is an embedding model.']]);
    expect(s['sparse+dense'][0]).toBeCloseTo((s.dense[0]! + s.sparse[0]!) / 2, 6);
    expect(s['colbert+sparse+dense'][0]).toBeCloseTo((s.dense[0]! + s.sparse[0]! + s.colbert[0]!) / 3, 6);
  });

  it('maps lexical-weight ids to tokens with convertIdToToken', async () => {
    const out = await model.encode(['What is BGE M3?'], { returnSparse: true });
    const [tokens] = model.convertIdToToken(out.lexicalWeights!);
    expect(Object.values(tokens!).sort()).toEqual(Object.values(out.lexicalWeights![0]!).sort());
    expect(Object.keys(tokens!).every((t) => !/^\d+$/.test(t) || t === '3')).toBe(true);
  });

  it('returns results in input order whatever the batch order', async () => {
    const texts = ['a much longer text than the others, with many more tokens in it', 'b', 'medium length text'];
    const together = await model.encode(texts, { batchSize: 2 });
    for (let i = 0; i < texts.length; i++) {
      const alone = await model.encode([texts[i]!]);
      for (let d = 0; d < model.dim; d++) expect(together.denseVecs![i]![d]).toBeCloseTo(alone.denseVecs![0]![d]!, 5);
    }
  });

  it('reports progress, keeps the event loop responsive and can be aborted', async () => {
    const texts = Array.from({ length: 600 }, (_, i) => `sample text number ${i} ${'word '.repeat(i % 40)}`);
    const progress: number[] = [];
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const out = await model.encode(texts, { batchSize: 16, onProgress: (p) => progress.push(p.done) });
    clearInterval(timer);
    expect(out.denseVecs).toHaveLength(600);
    expect(progress.at(-1)).toBe(600);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(ticks).toBeGreaterThan(5);

    const controller = new AbortController();
    const pending = model.encode(texts, { batchSize: 8, signal: controller.signal, onProgress: () => controller.abort() });
    await expect(pending).rejects.toThrow(/abort/i);
  });

  it('refuses use after dispose', async () => {
    const other = await BgeM3Model.load(TINY_DIR);
    await other.dispose();
    await expect(other.encode(['x'])).rejects.toMatchObject({ code: 'DISPOSED' });
    await other.dispose(); // idempotent
  });

  it('throws BgeM3Error instances', async () => {
    const err = await model.encode([1 as unknown as string]).catch((e) => e);
    expect(err).toBeInstanceOf(BgeM3Error);
    expect(err.name).toBe('BgeM3Error');
  });
});
