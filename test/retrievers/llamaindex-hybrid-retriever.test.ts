/**
 * `BgeM3HybridRetriever` (LlamaIndex.TS) on the fixture model: `NodeWithScore` results carrying the
 * index's scores, and the retriever inside a real `RetrieverQueryEngine` (MockLLM as the
 * synthesizer's LLM) followed by the `BgeM3Rerank` postprocessor.
 */
import { MockLLM } from '@llamaindex/core/llms/mock';
import { Document, MetadataMode, RetrieverQueryEngine, Settings, TextNode } from 'llamaindex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3Model, MemoryHybridIndex } from '../../src/index.js';
import { BgeM3HybridRetriever, BgeM3Rerank } from '../../src/llamaindex.js';
import { loadExpected, TINY_DIR } from '../helpers.js';

let model: BgeM3Model;
let documents: Document[];
beforeAll(async () => {
  model = await BgeM3Model.load(TINY_DIR);
  Settings.llm = new MockLLM();
  const texts = [...new Set(loadExpected().texts.map((t) => t.text))].filter((t) => t.trim().length > 0 && t.length < 600);
  documents = texts.map((text, i) => new Document({ text, id_: `doc-${i}`, metadata: { source: `doc-${i}`, group: i % 2 } }));
});
afterAll(async () => {
  await model?.dispose();
});

describe('BgeM3HybridRetriever (LlamaIndex)', () => {
  it('retrieve returns NodeWithScore with the index scores (score metadata hidden from the LLM and embedding text)', async () => {
    const retriever = await BgeM3HybridRetriever.fromDocuments(documents, { model, similarityTopK: 4 });
    const query = documents[6]!.text;
    const nodes = await retriever.retrieve(query);
    const direct = await (retriever.index as MemoryHybridIndex).search(query, { k: 4 });
    expect(nodes).toHaveLength(4);
    expect(nodes[0]!.node.id_).toBe('doc-6');
    nodes.forEach((n, i) => {
      expect(n.node).toBeInstanceOf(TextNode);
      expect(n.node.id_).toBe(direct[i]!.id);
      expect(n.score).toBe(direct[i]!.score);
      expect(n.node.getContent(MetadataMode.NONE)).toBe(direct[i]!.text);
      expect(n.node.metadata).toMatchObject({ ...direct[i]!.metadata, hybridScore: direct[i]!.score, denseScore: direct[i]!.dense, sparseScore: direct[i]!.sparse });
      expect(n.node.getContent(MetadataMode.LLM)).not.toMatch(/Score/);
      expect(n.node.getContent(MetadataMode.LLM)).toContain(`source: ${direct[i]!.metadata.source}`);
    });
    // Message-content queries are reduced to their text.
    const viaBundle = await retriever.retrieve({ query: [{ type: 'text', text: query }] });
    expect(viaBundle.map((n) => n.node.id_)).toEqual(nodes.map((n) => n.node.id_));
  });

  it('in RetrieverQueryEngine next to the BgeM3Rerank postprocessor', async () => {
    const index = new MemoryHybridIndex({ model });
    await index.add(documents.map((d) => ({ id: d.id_, text: d.text, metadata: d.metadata })));
    const retriever = new BgeM3HybridRetriever({ index, similarityTopK: 10, filter: { group: 0 } });
    const engine = new RetrieverQueryEngine(retriever, undefined, [new BgeM3Rerank({ model, topN: 3 })]);
    const query = 'How is the weather in the mountains today?';

    const candidates = await index.search(query, { k: 10, filter: { group: 0 } });
    const scores = await model.computeScore(
      candidates.map((c) => [query, c.text]),
      { weightsForDifferentModes: [0.4, 0.2, 0.4] },
    );
    const want = candidates
      .map((c, i) => ({ id: c.id, score: scores['colbert+sparse+dense'][i]! }))
      .sort((a, b) => b.score - a.score)
      .slice(0, 3);

    const response = await engine.query({ query });
    const sources = response.sourceNodes!;
    expect(sources.map((n) => n.node.id_)).toEqual(want.map((w) => w.id));
    sources.forEach((n, i) => {
      expect(n.score).toBeCloseTo(want[i]!.score, 5);
      expect(n.node.metadata.group).toBe(0);
    });
    expect(typeof response.message.content).toBe('string'); // MockLLM answered from the context

    // The engine's retrieve stage alone gives the same postprocessed nodes.
    const retrieved = await engine.retrieve(query);
    expect(retrieved.map((n) => n.node.id_)).toEqual(want.map((w) => w.id));
  });

  it('with its own rerank stage the node score is the reranker relevance score', async () => {
    const retriever = await BgeM3HybridRetriever.fromDocuments(documents.slice(0, 40), { model, k: 3, rerank: { topN: 10 } });
    const nodes = await retriever.retrieve('The string displayed on a tab label');
    expect(nodes).toHaveLength(3);
    for (const n of nodes) {
      expect(n.score).toBe(n.node.metadata.relevanceScore);
      expect(n.node.metadata.colbertScore).toBeTypeOf('number');
    }
  });

  it('rejects a missing index and conflicting k / similarityTopK', () => {
    expect(() => new BgeM3HybridRetriever({ index: {} as never })).toThrow(/index option must be a HybridIndex/);
    const index = new MemoryHybridIndex({ model });
    expect(() => new BgeM3HybridRetriever({ index, k: 3, similarityTopK: 4 })).toThrow(/same option/);
  });
});
