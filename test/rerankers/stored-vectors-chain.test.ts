/**
 * Retriever -> reranker chains over an index with stored multi-vectors, in the real frameworks:
 * LangChain's ContextualCompressionRetriever (BgeM3HybridRetriever + BgeM3Reranker { index }) and
 * a LlamaIndex retriever + BgeM3Rerank { index }, and the LangChain vector store over such an index.
 * The encoder runs are counted: one query encode per chain, no passage encodes.
 */
import { ContextualCompressionRetriever } from '@langchain/classic/retrievers/contextual_compression';
import { Document as LcDocument } from '@langchain/core/documents';
import { Document as LiDocument } from 'llamaindex';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BgeM3Model, MemoryHybridIndex } from '../../src/index.js';
import { BgeM3Embeddings, BgeM3HybridRetriever, BgeM3Reranker, BgeM3VectorStore } from '../../src/langchain.js';
import { BgeM3HybridRetriever as LiRetriever, BgeM3Rerank } from '../../src/llamaindex.js';
import { loadExpected, TINY_DIR } from '../helpers.js';

const texts = loadExpected().texts.map((t) => t.text);

describe('retriever -> reranker over stored multi-vectors', () => {
  let model: BgeM3Model;
  beforeAll(async () => {
    model = await BgeM3Model.load(TINY_DIR);
  });
  afterAll(async () => {
    await model.dispose();
  });

  async function countTexts<T>(work: () => Promise<T>): Promise<{ result: T; calls: number; texts: number }> {
    const spy = vi.spyOn(model, 'encode');
    try {
      const result = await work();
      return { result, calls: spy.mock.calls.length, texts: spy.mock.calls.reduce((n, c) => n + (c[0] as string[]).length, 0) };
    } finally {
      spy.mockRestore();
    }
  }

  it('LangChain: ContextualCompressionRetriever(BgeM3HybridRetriever, BgeM3Reranker { index }) encodes only the query, once', async () => {
    const docs = texts.map((t, i) => new LcDocument({ pageContent: t, metadata: { i }, id: `d${i}` }));
    const base = await BgeM3HybridRetriever.fromDocuments(docs, { model, k: 10, multiVectors: 'fp16' });
    const reranker = new BgeM3Reranker({ model, index: base.index, topN: 3, cacheMaxBytes: 0 });
    const chain = new ContextualCompressionRetriever({ baseRetriever: base, baseCompressor: reranker });
    const run = await countTexts(() => chain.invoke('Was ist BGE M3?'));
    expect(run.calls).toBe(1);
    expect(run.texts).toBe(1);
    expect(run.result).toHaveLength(3);
    expect(run.result.map((d) => d.metadata.colbertSource)).toEqual(['stored', 'stored', 'stored']);
    // The same chain over an index without stored vectors encodes the 10 passages (the query's
    // ColBERT rows are the ones the first chain's retriever encoded: same model, same text).
    const plainBase = await BgeM3HybridRetriever.fromDocuments(docs, { model, k: 10 });
    const plain = new ContextualCompressionRetriever({ baseRetriever: plainBase, baseCompressor: new BgeM3Reranker({ model, topN: 3, cacheMaxBytes: 0 }) });
    const slow = await countTexts(() => plain.invoke('Was ist BGE M3?'));
    expect(slow.texts).toBe(1 + 10);
    expect(slow.result.map((d) => d.id)).toEqual(run.result.map((d) => d.id));
    expect(slow.result.every((d) => d.metadata.colbertSource === 'encoded')).toBe(true);
    for (const [i, d] of run.result.entries()) expect(Math.abs((d.metadata.relevanceScore as number) - (slow.result[i]!.metadata.relevanceScore as number))).toBeLessThanOrEqual(1e-3);
    await (base.index as MemoryHybridIndex).close();
  });

  it('LangChain: BgeM3VectorStore over an index with multiVectors stores them from addDocuments', async () => {
    const index = new MemoryHybridIndex({ model, multiVectors: 'int8' });
    const store = new BgeM3VectorStore(new BgeM3Embeddings({ model }), { index });
    await store.addDocuments(texts.slice(0, 20).map((t, i) => new LcDocument({ pageContent: t, id: `v${i}` })));
    const reranker = new BgeM3Reranker({ model, index: store.index, topN: 2 });
    const run = await countTexts(async () => reranker.compressDocuments(await store.similaritySearch('dense retrieval', 5), 'dense retrieval'));
    expect(run.texts).toBe(1);
    expect(run.result.map((d) => d.metadata.colbertSource)).toEqual(['stored', 'stored']);
    await index.close();
  });

  it('LlamaIndex: BgeM3HybridRetriever then BgeM3Rerank { index } encodes only the query, once', async () => {
    const documents = texts.map((text, i) => new LiDocument({ text, id_: `doc-${i}` }));
    const retriever = await LiRetriever.fromDocuments(documents, { model, k: 8, multiVectors: 'fp16' });
    const rerank = new BgeM3Rerank({ model, index: retriever.index, topN: 3, cacheMaxBytes: 0 });
    const run = await countTexts(async () => rerank.postprocessNodes(await retriever.retrieve('multilingual embeddings'), 'multilingual embeddings'));
    expect(run.calls).toBe(1);
    expect(run.texts).toBe(1);
    expect(run.result).toHaveLength(3);
    const plain = new BgeM3Rerank({ model, topN: 3, cacheMaxBytes: 0 });
    const want = await plain.postprocessNodes(await retriever.retrieve('multilingual embeddings'), 'multilingual embeddings');
    expect(run.result.map((n) => n.node.id_)).toEqual(want.map((n) => n.node.id_));
    run.result.forEach((n, i) => expect(Math.abs(n.score! - want[i]!.score!)).toBeLessThanOrEqual(1e-3));
    await (retriever.index as MemoryHybridIndex).close();
  });
});
