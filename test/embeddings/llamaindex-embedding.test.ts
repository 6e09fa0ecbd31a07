/**
 * `BgeM3Embedding` (LlamaIndex.TS) on the fixture model: the engine's dense vectors, embedBatchSize
 * honoured, and a real `VectorStoreIndex` built with it retrieving as direct engine scoring does.
 */
import { MockLLM } from '@llamaindex/core/llms/mock';
import { Document, MetadataMode, Settings, VectorStoreIndex } from 'llamaindex';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BgeM3Error, BgeM3Model, dot } from '../../src/index.js';
import { BgeM3Embedding } from '../../src/llamaindex.js';
import { maxAbsDiff, TINY_DIR } from '../helpers.js';
import { CORPUS, QUERY } from './corpus.js';

const SAME = 1e-6;

describe('BgeM3Embedding', () => {
  let model: BgeM3Model;
  beforeAll(async () => {
    model = await BgeM3Model.load(TINY_DIR);
    Settings.llm = new MockLLM();
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it("returns the engine's dense vectors for texts and text queries; null for non-text queries", async () => {
    const embed = new BgeM3Embedding({ model });
    const direct = await model.encode([QUERY, ...CORPUS]);
    const vectors = await embed.getTextEmbeddings(CORPUS);
    vectors.forEach((v, i) => expect(maxAbsDiff(v, direct.denseVecs![i + 1]!)).toBeLessThan(SAME));
    expect(maxAbsDiff(await embed.getTextEmbedding(QUERY), direct.denseVecs![0]!)).toBeLessThan(SAME);
    const q = await embed.getQueryEmbedding({ type: 'text', text: QUERY });
    expect(maxAbsDiff(q!, direct.denseVecs![0]!)).toBeLessThan(SAME);
    // LlamaIndex's own contract for non-text query content (BaseEmbedding.getQueryEmbedding).
    expect(await embed.getQueryEmbedding({ type: 'image_url', image_url: { url: 'data:image/png;base64,AA==' } })).toBeNull();
  });

  it('honours embedBatchSize: LlamaIndex chunks by it, each chunk is one encode with batches <= it', async () => {
    const embed = new BgeM3Embedding({ model, embedBatchSize: 4 });
    expect(embed.embedBatchSize).toBe(4);
    expect(new BgeM3Embedding({ model }).embedBatchSize).toBe(256);
    // Record sizes at call time: LlamaIndex reuses (and empties) its chunk array after each call.
    const sizes: number[] = [];
    const original = model.encode.bind(model);
    const spy = vi.spyOn(model, 'encode').mockImplementation((texts, options) => {
      sizes.push(texts.length);
      return original(texts, options);
    });
    const progress: [number, number][] = [];
    try {
      const vectors = await embed.getTextEmbeddingsBatch(CORPUS.slice(0, 10), { progressCallback: (done, total) => progress.push([done, total]) });
      expect(vectors).toHaveLength(10);
      expect(sizes).toEqual([4, 4, 2]);
      for (const [, options] of spy.mock.calls) expect(options).toMatchObject({ batchSize: 4, maxLength: undefined }) // undefined: the engine applies its default;
      expect(progress).toEqual([
        [4, 10],
        [8, 10],
        [10, 10],
      ]);
    } finally {
      spy.mockRestore();
    }
  });

  it('builds a VectorStoreIndex whose retriever ranks and scores as direct engine calls', async () => {
    const embedModel = new BgeM3Embedding({ model });
    const docs = CORPUS.map((text, i) => new Document({ text, id_: `doc-${i}` }));
    const index = await Settings.withEmbedModel(embedModel, () => VectorStoreIndex.fromDocuments(docs));
    const hits = await index.asRetriever({ similarityTopK: 4 }).retrieve(QUERY);

    const { denseVecs } = await model.encode([QUERY, ...CORPUS]);
    const [q, ...d] = denseVecs!;
    const want = d.map((v, i) => ({ text: CORPUS[i]!, score: dot(q!, v) })).sort((a, b) => b.score - a.score).slice(0, 4);
    expect(hits.map((h) => h.node.getContent(MetadataMode.NONE))).toEqual(want.map((w) => w.text));
    hits.forEach((h, k) => expect(Math.abs(h.score! - want[k]!.score)).toBeLessThan(1e-5));
  });

  it('edge cases: [] gives []; empty text embeds; non-text input and bad options are BgeM3Errors', async () => {
    const embed = new BgeM3Embedding({ model });
    expect(await embed.getTextEmbeddings([])).toEqual([]);
    expect(await new BgeM3Embedding({ model: '/nowhere' }).getTextEmbeddings([])).toEqual([]); // no load for nothing
    expect(await embed.getTextEmbedding('')).toHaveLength(model.dim);
    await expect(embed.getTextEmbeddings(['a', null as never])).rejects.toThrow(/texts\[1\] is null/);
    await expect(embed.getTextEmbedding(5 as never)).rejects.toBeInstanceOf(BgeM3Error);
    expect(() => new BgeM3Embedding({ model, embedBatchSize: 0 })).toThrow(/embedBatchSize must be an integer >= 1/);
    expect(() => new BgeM3Embedding({ model, maxLength: 0 })).toThrow(/maxLength/);
  });
});
