/**
 * `BgeM3Embeddings` (LangChain.js) on the fixture model: vectors equal the engine's dense output, a
 * real `MemoryVectorStore` filled through it ranks as direct engine calls do, and batchSize,
 * maxConcurrency, retries, progress, lazy shared loading and bad input behave as documented.
 */
import { MemoryVectorStore } from '@langchain/classic/vectorstores/memory';
import { Document } from '@langchain/core/documents';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BgeM3Error, BgeM3Model, dot } from '../../src/index.js';
import { BgeM3Embeddings, disposeSharedModels } from '../../src/langchain.js';
import { maxAbsDiff, TINY_DIR } from '../helpers.js';
import { CORPUS, QUERY } from './corpus.js';

/** Different batch composition (padding) changes the last float bits only. */
const SAME = 1e-6;

describe('BgeM3Embeddings', () => {
  let model: BgeM3Model;
  beforeAll(async () => {
    model = await BgeM3Model.load(TINY_DIR);
  });
  afterAll(async () => {
    await model?.dispose();
    await disposeSharedModels();
  });

  it("returns the engine's dense vectors as number[][] / number[]", async () => {
    const embeddings = new BgeM3Embeddings({ model });
    const docs = await embeddings.embedDocuments(CORPUS);
    const direct = await model.encode(CORPUS);
    expect(docs).toHaveLength(CORPUS.length);
    docs.forEach((v, i) => {
      expect(Array.isArray(v)).toBe(true);
      expect(v).toHaveLength(model.dim);
      expect(maxAbsDiff(v, direct.denseVecs![i]!)).toBeLessThan(SAME);
    });
    const q = await embeddings.embedQuery(QUERY);
    expect(Array.isArray(q)).toBe(true);
    expect(maxAbsDiff(q, (await model.encode([QUERY])).denseVecs![0]!)).toBeLessThan(SAME);
  });

  it('fills a MemoryVectorStore whose search equals direct engine scoring', async () => {
    const store = await MemoryVectorStore.fromDocuments(
      CORPUS.map((text, i) => new Document({ pageContent: text, metadata: { i } })),
      new BgeM3Embeddings({ model }),
    );
    const hits = await store.similaritySearchWithScore(QUERY, 5);
    const { denseVecs } = await model.encode([QUERY, ...CORPUS]);
    const [q, ...docs] = denseVecs!;
    // BGE-M3 dense vectors are unit length, so the store's cosine is the engine's inner product.
    const want = docs.map((d, i) => ({ i, score: dot(q!, d) })).sort((a, b) => b.score - a.score).slice(0, 5);
    expect(hits.map(([doc]) => doc.metadata.i)).toEqual(want.map((w) => w.i));
    hits.forEach(([doc, score], k) => {
      expect(doc.pageContent).toBe(CORPUS[want[k]!.i]);
      expect(Math.abs(score - want[k]!.score)).toBeLessThan(1e-5);
    });
  });

  it('splits embedDocuments into encode calls of batchSize texts and reports progress', async () => {
    const progress: number[] = [];
    const embeddings = new BgeM3Embeddings({ model, batchSize: 4, maxLength: 16, onProgress: (p) => progress.push(p.done) });
    const spy = vi.spyOn(model, 'encode');
    try {
      const vectors = await embeddings.embedDocuments(CORPUS.slice(0, 10));
      expect(vectors).toHaveLength(10);
      expect(spy.mock.calls.map((c) => c[0].length)).toEqual([4, 4, 2]);
      for (const [, options] of spy.mock.calls) expect(options).toMatchObject({ batchSize: 4, maxLength: 16 });
      expect(progress).toEqual([4, 8, 10]);
      // maxLength is honoured: the same as encoding with maxLength 16 directly.
      const direct = await model.encode(CORPUS.slice(0, 10), { maxLength: 16 });
      vectors.forEach((v, i) => expect(maxAbsDiff(v, direct.denseVecs![i]!)).toBeLessThan(SAME));
    } finally {
      spy.mockRestore();
    }
  });

  it('runs one encode at a time by default; maxConcurrency allows more', async () => {
    async function peakConcurrency(embeddings: BgeM3Embeddings): Promise<number> {
      let active = 0;
      let peak = 0;
      const original = model.encode.bind(model);
      const spy = vi.spyOn(model, 'encode').mockImplementation(async (...args) => {
        peak = Math.max(peak, ++active);
        try {
          return await original(...args);
        } finally {
          active--;
        }
      });
      try {
        await embeddings.embedDocuments(CORPUS);
      } finally {
        spy.mockRestore();
      }
      return peak;
    }
    expect(await peakConcurrency(new BgeM3Embeddings({ model, batchSize: 2 }))).toBe(1);
    expect(await peakConcurrency(new BgeM3Embeddings({ model, batchSize: 2, maxConcurrency: 3 }))).toBe(3);
  });

  it('does not retry a failed encode by default; maxRetries opts in', async () => {
    const failure = new BgeM3Error('INVALID_ARGUMENT', 'simulated local failure');
    const spy = vi.spyOn(model, 'encode').mockRejectedValue(failure);
    try {
      await expect(new BgeM3Embeddings({ model }).embedDocuments(['a'])).rejects.toBe(failure);
      expect(spy).toHaveBeenCalledTimes(1);
      await expect(new BgeM3Embeddings({ model }).embedQuery('a')).rejects.toBe(failure);
      expect(spy).toHaveBeenCalledTimes(2);

      spy.mockClear();
      spy.mockRejectedValueOnce(new Error('transient'));
      spy.mockImplementationOnce((texts) => Promise.resolve({ denseVecs: texts.map(() => new Float32Array(model.dim)) }));
      const vectors = await new BgeM3Embeddings({ model, maxRetries: 1 }).embedDocuments(['a']);
      expect(spy).toHaveBeenCalledTimes(2);
      expect(vectors).toEqual([new Array(model.dim).fill(0)]);
    } finally {
      spy.mockRestore();
    }
  });

  it('loads a model given as a source string lazily, once, shared by every adapter', async () => {
    const load = vi.spyOn(BgeM3Model, 'load');
    try {
      const a = new BgeM3Embeddings({ model: TINY_DIR });
      const b = new BgeM3Embeddings({ model: TINY_DIR, batchSize: 8 });
      expect(load).not.toHaveBeenCalled(); // nothing loads at construction
      const [va, vb] = await Promise.all([a.embedQuery(QUERY), b.embedQuery(QUERY)]);
      expect(load).toHaveBeenCalledTimes(1);
      expect(await a.getModel()).toBe(await b.getModel());
      expect(va).toEqual(vb);
      // Different load options are a different model.
      const c = new BgeM3Embeddings({ model: TINY_DIR, loadOptions: { threads: 1 } });
      expect(await c.getModel()).not.toBe(await a.getModel());
      expect(load).toHaveBeenCalledTimes(2);
    } finally {
      load.mockRestore();
      await disposeSharedModels();
    }
  });

  it('a failed lazy load reports the file at fault and is retried on the next call', async () => {
    const embeddings = new BgeM3Embeddings({ model: `${TINY_DIR}/does-not-exist` });
    const err = await embeddings.embedQuery('x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BgeM3Error);
    expect((err as Error).message).toContain('does-not-exist');
    const load = vi.spyOn(BgeM3Model, 'load');
    try {
      await expect(embeddings.embedQuery('x')).rejects.toBeInstanceOf(BgeM3Error);
      expect(load).toHaveBeenCalledTimes(1);
    } finally {
      load.mockRestore();
    }
  });

  it('edge cases: [] gives [] without loading; empty strings embed; non-text input is a BgeM3Error', async () => {
    const lazy = new BgeM3Embeddings({ model: '/nowhere/bge-m3' });
    expect(await lazy.embedDocuments([])).toEqual([]);

    const embeddings = new BgeM3Embeddings({ model });
    const [empty] = await embeddings.embedDocuments(['']);
    expect(empty).toHaveLength(model.dim);
    await expect(embeddings.embedDocuments(['ok', 42 as never])).rejects.toThrow(/documents\[1\] is number 42/);
    await expect(embeddings.embedDocuments('text' as never)).rejects.toThrow(/documents must be an array of strings/);
    await expect(embeddings.embedQuery(undefined as never)).rejects.toThrow(/the query must be a string; got undefined/);
    await expect(embeddings.embedQuery({ text: 'x' } as never)).rejects.toBeInstanceOf(BgeM3Error);
  });

  it('checks options at construction', () => {
    expect(() => new BgeM3Embeddings({ model, batchSize: 0 })).toThrow(/batchSize must be an integer >= 1/);
    expect(() => new BgeM3Embeddings({ model, maxLength: 1 })).toThrow(/maxLength must be an integer >= 2/);
    expect(() => new BgeM3Embeddings({ model, maxConcurrency: 0 })).toThrow(/maxConcurrency/);
    expect(() => new BgeM3Embeddings({ model: '' })).toThrow(/empty string/);
    expect(() => new BgeM3Embeddings({ model: 42 as never })).toThrow(/must be a loaded BgeM3Model or a source string/);
  });
});
