/**
 * `BgeM3HybridRetriever` (LangChain.js) on the fixture model, inside LangChain's own machinery: a
 * runnable RAG chain (with retriever callbacks), `ContextualCompressionRetriever` with the
 * `BgeM3Reranker` compressor, and `EnsembleRetriever` next to LangChain's `BM25Retriever`.
 */
import { ContextualCompressionRetriever } from '@langchain/classic/retrievers/contextual_compression';
import { EnsembleRetriever } from '@langchain/classic/retrievers/ensemble';
import { BM25Retriever } from '@langchain/community/retrievers/bm25';
import { BaseCallbackHandler } from '@langchain/core/callbacks/base';
import { Document, type DocumentInterface } from '@langchain/core/documents';
import { ChatPromptTemplate } from '@langchain/core/prompts';
import { RunnablePassthrough, RunnableSequence } from '@langchain/core/runnables';
import { FakeListChatModel } from '@langchain/core/utils/testing';
import { StringOutputParser } from '@langchain/core/output_parsers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3Model, MemoryHybridIndex } from '../../src/index.js';
import { BgeM3HybridRetriever, BgeM3Reranker } from '../../src/langchain.js';
import { loadExpected, TINY_DIR } from '../helpers.js';

let model: BgeM3Model;
let docs: Document[];
beforeAll(async () => {
  model = await BgeM3Model.load(TINY_DIR);
  const texts = [...new Set(loadExpected().texts.map((t) => t.text))].filter((t) => t.trim().length > 0 && t.length < 600);
  docs = texts.map((text, i) => new Document({ pageContent: text, metadata: { source: `doc-${i}`, lang: i % 3 }, id: `id-${i}` }));
});
afterAll(async () => {
  await model?.dispose();
});

class RetrieverEvents extends BaseCallbackHandler {
  name = 'retriever-events';
  starts: string[] = [];
  ends: DocumentInterface[][] = [];
  override handleRetrieverStart(_r: unknown, query: string) {
    this.starts.push(query);
  }
  override handleRetrieverEnd(documents: DocumentInterface[]) {
    this.ends.push(documents);
  }
}

describe('BgeM3HybridRetriever (LangChain)', () => {
  it('fromDocuments: documents carry their id, metadata and the index scores', async () => {
    const retriever = await BgeM3HybridRetriever.fromDocuments(docs, { model, k: 5 });
    expect(retriever.lc_namespace).toEqual(['bge_m3_rag', 'retrievers', 'hybrid']);
    expect(BgeM3HybridRetriever.lc_name()).toBe('BgeM3HybridRetriever');
    const query = docs[4]!.pageContent;
    const found = await retriever.invoke(query);
    const direct = await (retriever.index as MemoryHybridIndex).search(query, { k: 5 });
    expect(found).toHaveLength(5);
    expect(found[0]!.id).toBe('id-4');
    found.forEach((doc, i) => {
      expect(doc.pageContent).toBe(direct[i]!.text);
      expect(doc.id).toBe(direct[i]!.id);
      expect(doc.metadata).toEqual({ ...direct[i]!.metadata, hybridScore: direct[i]!.score, denseScore: direct[i]!.dense, sparseScore: direct[i]!.sparse });
    });
    expect(found[0]!.metadata.source).toBe('doc-4');
  });

  it('in a runnable RAG chain (prompt → chat model), with retriever callbacks', async () => {
    const index = new MemoryHybridIndex({ model });
    await index.add(docs.map((d) => ({ id: d.id, text: d.pageContent, metadata: d.metadata })));
    const retriever = new BgeM3HybridRetriever({ index, k: 3, filter: { lang: 1 } });
    const prompt = ChatPromptTemplate.fromTemplate('Context:\n{context}\n\nQuestion: {question}');
    let seenPrompt = '';
    const llm = new FakeListChatModel({ responses: ['a canned answer (FakeListChatModel stands in for an LLM)'] });
    const chain = RunnableSequence.from([
      {
        context: retriever.pipe((found: DocumentInterface[]) => found.map((d) => `[${d.id}] ${d.pageContent}`).join('\n')),
        question: new RunnablePassthrough(),
      },
      prompt,
      (value: { toString(): string }) => {
        seenPrompt = value.toString();
        return value;
      },
      llm,
      new StringOutputParser(),
    ]);
    const events = new RetrieverEvents();
    const answer = await chain.invoke('Guten Morgen, wie geht es?', { callbacks: [events] });
    expect(answer).toBe('a canned answer (FakeListChatModel stands in for an LLM)');
    const expected = await index.search('Guten Morgen, wie geht es?', { k: 3, filter: { lang: 1 } });
    for (const r of expected) expect(seenPrompt).toContain(`[${r.id}] `);
    expect(events.starts).toEqual(['Guten Morgen, wie geht es?']);
    expect(events.ends[0]!.map((d) => d.id)).toEqual(expected.map((r) => r.id));
    for (const d of events.ends[0]!) expect(d.metadata.lang).toBe(1);
  });

  it('as the base retriever of ContextualCompressionRetriever with the BgeM3Reranker compressor', async () => {
    const hybrid = await BgeM3HybridRetriever.fromDocuments(docs, { model, k: 10 });
    const compression = new ContextualCompressionRetriever({ baseRetriever: hybrid, baseCompressor: new BgeM3Reranker({ model, topN: 3 }) });
    const query = 'How does hybrid retrieval with dense and lexical matching work?';
    const reranked = await compression.invoke(query);
    expect(reranked).toHaveLength(3);
    const candidates = await hybrid.invoke(query);
    const scores = await model.computeScore(
      candidates.map((d) => [query, d.pageContent]),
      { weightsForDifferentModes: [0.4, 0.2, 0.4] },
    );
    const best = candidates
      .map((d, i) => ({ id: d.id, score: scores['colbert+sparse+dense'][i]! }))
      .sort((a, b) => b.score - a.score)
      .slice(0, 3);
    expect(reranked.map((d) => d.id)).toEqual(best.map((b) => b.id));
    for (const d of reranked) {
      expect(d.metadata.relevanceScore).toBeCloseTo(best.find((b) => b.id === d.id)!.score, 5);
      expect(d.metadata.hybridScore).toBeTypeOf('number'); // the hybrid stage's scores travel along
    }
  });

  it('with its own rerank stage: relevanceScore and colbertScore in metadata, ordered by relevanceScore', async () => {
    const retriever = await BgeM3HybridRetriever.fromDocuments(docs, { model, k: 3, rerank: { topN: 10 } });
    const found = await retriever.invoke('The string displayed on a tab label');
    expect(found).toHaveLength(3);
    const scores = found.map((d) => d.metadata.relevanceScore as number);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
    for (const d of found) {
      expect(d.metadata.colbertScore).toBeTypeOf('number');
      expect(d.metadata.hybridScore).toBeTypeOf('number');
    }
  });

  it('next to BM25Retriever inside EnsembleRetriever', async () => {
    const hybrid = await BgeM3HybridRetriever.fromDocuments(docs, { model, k: 5 });
    const bm25 = BM25Retriever.fromDocuments(docs, { k: 5 });
    const ensemble = new EnsembleRetriever({ retrievers: [hybrid, bm25], weights: [0.7, 0.3] });
    const found = await ensemble.invoke(docs[10]!.pageContent);
    expect(found.length).toBeGreaterThanOrEqual(5);
    expect(found[0]!.pageContent).toBe(docs[10]!.pageContent);
  });

  it('rejects a missing index and bad search options at construction', () => {
    expect(() => new BgeM3HybridRetriever({ index: undefined as never })).toThrow(/index option must be a HybridIndex/);
    const index = new MemoryHybridIndex({ model });
    expect(() => new BgeM3HybridRetriever({ index, k: -1 })).toThrow(/k must be a positive integer/);
    expect(() => new BgeM3HybridRetriever({ index, fusion: 'sum' as never })).toThrow(/fusion must be/);
  });
});
