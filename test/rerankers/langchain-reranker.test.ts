/**
 * `BgeM3Reranker` (LangChain.js document compressor) on the fixture model, inside a real
 * `ContextualCompressionRetriever` over a `MemoryVectorStore`: order and scores equal
 * `computeScore`; documents come back as annotated copies; every edge case has a defined result.
 */
import { ContextualCompressionRetriever } from '@langchain/classic/retrievers/contextual_compression';
import { MemoryVectorStore } from '@langchain/classic/vectorstores/memory';
import { Document, type DocumentInterface } from '@langchain/core/documents';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BgeM3Error, BgeM3Model } from '../../src/index.js';
import { BgeM3Embeddings, BgeM3Reranker } from '../../src/langchain.js';
import { CORPUS, OTHER_QUERY, QUERY } from '../embeddings/corpus.js';
import { TINY_DIR } from '../helpers.js';

const SAME = 1e-5;

async function computeScores(model: BgeM3Model, query: string, docs: readonly DocumentInterface[], weights = [0.4, 0.2, 0.4]) {
  return model.computeScore(
    docs.map((d) => [query, d.pageContent] as [string, string]),
    { weightsForDifferentModes: weights },
  );
}

describe('BgeM3Reranker', () => {
  let model: BgeM3Model;
  let docs: Document[];
  beforeAll(async () => {
    model = await BgeM3Model.load(TINY_DIR);
    docs = CORPUS.map((text, i) => new Document({ pageContent: text, metadata: { source: `doc-${i}` }, id: `id-${i}` }));
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('in ContextualCompressionRetriever: top 3 by colbert+sparse+dense, scores equal computeScore', async () => {
    const store = await MemoryVectorStore.fromDocuments(docs, new BgeM3Embeddings({ model }));
    const baseRetriever = store.asRetriever(8);
    const retriever = new ContextualCompressionRetriever({ baseCompressor: new BgeM3Reranker({ model }), baseRetriever });

    const candidates = await baseRetriever.invoke(QUERY);
    expect(candidates).toHaveLength(8);
    const s = await computeScores(model, QUERY, candidates);
    const want = candidates
      .map((d, i) => ({ source: d.metadata.source, score: s['colbert+sparse+dense'][i]!, dense: s.dense[i]!, sparse: s.sparse[i]!, colbert: s.colbert[i]! }))
      .sort((a, b) => b.score - a.score)
      .slice(0, 3);

    const out = await retriever.invoke(QUERY);
    expect(out.map((d) => d.metadata.source)).toEqual(want.map((w) => w.source));
    out.forEach((d, k) => {
      expect(Math.abs(d.metadata.relevanceScore - want[k]!.score)).toBeLessThan(SAME);
      expect(Math.abs(d.metadata.denseScore - want[k]!.dense)).toBeLessThan(SAME);
      expect(Math.abs(d.metadata.sparseScore - want[k]!.sparse)).toBeLessThan(SAME);
      expect(Math.abs(d.metadata.colbertScore - want[k]!.colbert)).toBeLessThan(SAME);
    });
  });

  it('returns copies: inputs untouched, pageContent, id and metadata kept', async () => {
    const input = docs.slice(0, 5);
    const before = structuredClone(input.map((d) => ({ pageContent: d.pageContent, metadata: d.metadata, id: d.id })));
    const out = await new BgeM3Reranker({ model, topN: 5 }).compressDocuments(input, QUERY);
    expect(input.map((d) => ({ pageContent: d.pageContent, metadata: d.metadata, id: d.id }))).toEqual(before);
    for (const d of out) {
      expect(d).toBeInstanceOf(Document);
      const original = input.find((x) => x.id === d.id)!;
      expect(d).not.toBe(original);
      expect(d.pageContent).toBe(original.pageContent);
      expect(d.metadata).toMatchObject(original.metadata);
      expect(Object.keys(d.metadata).sort()).toEqual(['colbertScore', 'colbertSource', 'denseScore', 'relevanceScore', 'source', 'sparseScore']);
    }
  });

  it('honours weights and lengths (equal to computeScore with the same options)', async () => {
    const reranker = new BgeM3Reranker({ model, topN: 4, weights: [1, 0, 1], maxQueryLength: 5, maxPassageLength: 12 });
    const input = docs.slice(0, 6);
    const out = await reranker.compressDocuments(input, QUERY);
    const s = await model.computeScore(
      input.map((d) => [QUERY, d.pageContent] as [string, string]),
      { weightsForDifferentModes: [1, 0, 1], maxQueryLength: 5, maxPassageLength: 12 },
    );
    const want = input.map((d, i) => ({ id: d.id, score: s['colbert+sparse+dense'][i]! })).sort((a, b) => b.score - a.score).slice(0, 4);
    expect(out.map((d) => d.id)).toEqual(want.map((w) => w.id));
    out.forEach((d, k) => expect(Math.abs(d.metadata.relevanceScore - want[k]!.score)).toBeLessThan(SAME));
  });

  it('rerank() scores strings and Documents alike, all of them unless topN is given', async () => {
    const reranker = new BgeM3Reranker({ model });
    const mixed = [CORPUS[0]!, docs[1]!, CORPUS[2]!, docs[3]!, CORPUS[4]!];
    const results = await reranker.rerank(mixed, QUERY);
    expect(results).toHaveLength(5); // the constructor's topN (3) is for compressDocuments
    const s = await computeScores(model, QUERY, CORPUS.slice(0, 5).map((t) => new Document({ pageContent: t })));
    for (const r of results) {
      expect(Object.keys(r).sort()).toEqual(['colbert', 'colbertSource', 'dense', 'index', 'relevanceScore', 'sparse']);
      expect(Math.abs(r.relevanceScore - s['colbert+sparse+dense'][r.index]!)).toBeLessThan(SAME);
    }
    expect(await reranker.rerank(mixed, QUERY, { topN: 2 })).toEqual(results.slice(0, 2));
  });

  it('caches passage encodings: compressing the same documents again encodes only the query', async () => {
    const reranker = new BgeM3Reranker({ model });
    await reranker.compressDocuments(docs, QUERY);
    const spy = vi.spyOn(model, 'encode');
    try {
      await reranker.compressDocuments(docs, OTHER_QUERY);
      expect(spy.mock.calls.map((c) => c[0])).toEqual([[OTHER_QUERY]]);
      expect((await reranker.getReranker()).cacheStats().hits).toBe(docs.length);
    } finally {
      spy.mockRestore();
    }
  });

  it('edge cases: empty list, topN larger than the list, identical texts', async () => {
    const reranker = new BgeM3Reranker({ model }); // topN 3
    expect(await reranker.compressDocuments([], QUERY)).toEqual([]);
    expect(await reranker.rerank([], QUERY)).toEqual([]);

    const two = await reranker.compressDocuments(docs.slice(0, 2), QUERY);
    expect(two).toHaveLength(2);

    const twins = [
      new Document({ pageContent: CORPUS[5]!, metadata: { n: 0 } }),
      new Document({ pageContent: CORPUS[2]!, metadata: { n: 1 } }),
      new Document({ pageContent: CORPUS[5]!, metadata: { n: 2 } }),
    ];
    const out = await new BgeM3Reranker({ model, topN: 10 }).compressDocuments(twins, QUERY);
    expect(out).toHaveLength(3); // identical texts are not merged: each document is kept
    const [a, b] = out.filter((d) => d.pageContent === CORPUS[5]);
    expect(a!.metadata.relevanceScore).toBe(b!.metadata.relevanceScore);
    expect([a!.metadata.n, b!.metadata.n]).toEqual([0, 2]); // ties keep input order
  });

  it('a missing query is a BgeM3Error, even with no documents', async () => {
    const reranker = new BgeM3Reranker({ model });
    for (const query of [undefined, null, 7]) {
      const err = await reranker.compressDocuments(docs, query as never).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BgeM3Error);
      expect((err as Error).message).toMatch(/BgeM3Reranker: the query must be a string/);
      await expect(reranker.compressDocuments([], query as never)).rejects.toBeInstanceOf(BgeM3Error);
    }
  });

  it('non-text content is a BgeM3Error naming the document', async () => {
    const reranker = new BgeM3Reranker({ model });
    await expect(reranker.rerank(['ok', 42 as never], QUERY)).rejects.toThrow(/documents\[1\] is number 42; pass strings or Documents/);
    await expect(reranker.compressDocuments([docs[0]!, { pageContent: { text: 'x' }, metadata: {} } as never], QUERY)).rejects.toThrow(
      /documents\[1\] is an object with pageContent an object/,
    );
    await expect(reranker.rerank([null as never], QUERY)).rejects.toThrow(/documents\[0\] is null/);
    await expect(reranker.rerank('text' as never, QUERY)).rejects.toThrow(/documents must be an array/);
  });

  it('checks options at construction', () => {
    expect(() => new BgeM3Reranker({ model, topN: 0 })).toThrow(/BgeM3Reranker: topN must be an integer >= 1/);
    expect(() => new BgeM3Reranker({ model, weights: [0, 0, 0] })).toThrow(/BgeM3Reranker: weights/);
    expect(() => new BgeM3Reranker({ model, maxPassageLength: 1.5 })).toThrow(/maxPassageLength must be an integer >= 2/);
    expect(() => new BgeM3Reranker({ model, cacheMaxBytes: -5 })).toThrow(/cacheMaxBytes/);
    expect(new BgeM3Reranker({ model }).topN).toBe(3);
  });
});
