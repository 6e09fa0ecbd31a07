/**
 * One model instance serves every adapter at once: the LangChain and LlamaIndex embeddings and
 * rerankers and the framework-free reranker, run concurrently on one `BgeM3Model`, give the same
 * numbers as when each runs alone; adapters given the same source string share one loaded model.
 */
import { TextNode } from '@llamaindex/core/schema';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BgeM3Model, M3Reranker } from '../../src/index.js';
import { BgeM3Embeddings, BgeM3Reranker, disposeSharedModels } from '../../src/langchain.js';
import { BgeM3Embedding, BgeM3Rerank } from '../../src/llamaindex.js';
import { TINY_DIR } from '../helpers.js';
import { CORPUS, OTHER_QUERY, QUERY } from './corpus.js';

describe('one model, every adapter', () => {
  let model: BgeM3Model;
  beforeAll(async () => {
    model = await BgeM3Model.load(TINY_DIR);
  });
  afterAll(async () => {
    await model?.dispose();
    await disposeSharedModels();
  });

  it('all adapters run concurrently on one instance and match their solo results', async () => {
    const nodes = CORPUS.map((text) => ({ node: new TextNode({ text }) }));
    const jobs = () => [
      () => new BgeM3Embeddings({ model }).embedDocuments(CORPUS),
      () => new BgeM3Embeddings({ model }).embedQuery(QUERY),
      () => new BgeM3Embedding({ model, embedBatchSize: 3 }).getTextEmbeddingsBatch(CORPUS),
      async () => (await new BgeM3Reranker({ model, topN: 5 }).compressDocuments(CORPUS.map((pageContent) => ({ pageContent, metadata: {} })), QUERY)).map((d) => [d.pageContent, d.metadata.relevanceScore]),
      async () => (await new BgeM3Rerank({ model, topN: 5 }).postprocessNodes(nodes, OTHER_QUERY)).map((n) => [n.node.id_, n.score]),
      () => new M3Reranker({ model }).rerank(OTHER_QUERY, CORPUS),
    ];
    const solo: unknown[] = [];
    for (const job of jobs()) solo.push(await job());
    const together = await Promise.all(jobs().map((job) => job()));
    expect(together).toHaveLength(solo.length);
    together.forEach((result, i) => expectClose(result, solo[i], `job ${i}`));
  });

  it('adapters given the same source string share one lazily loaded model', async () => {
    const load = vi.spyOn(BgeM3Model, 'load');
    try {
      const adapters = {
        lcEmbeddings: new BgeM3Embeddings({ model: TINY_DIR }),
        lcReranker: new BgeM3Reranker({ model: TINY_DIR }),
        liEmbedding: new BgeM3Embedding({ model: TINY_DIR }),
        liRerank: new BgeM3Rerank({ model: TINY_DIR }),
      };
      expect(load).not.toHaveBeenCalled();
      const models = await Promise.all([
        adapters.lcEmbeddings.getModel(),
        adapters.lcReranker.getReranker().then((r) => r.model),
        adapters.liEmbedding.getModel(),
        adapters.liRerank.getReranker().then((r) => r.model),
      ]);
      expect(load).toHaveBeenCalledTimes(1);
      expect(new Set(models).size).toBe(1);
      expect(models[0]).not.toBe(model);
    } finally {
      load.mockRestore();
      await disposeSharedModels();
    }
  });
});

/** Deep equality with numbers compared to 1e-6 (concurrent runs batch texts differently). */
function expectClose(actual: unknown, expected: unknown, path: string): void {
  if (typeof expected === 'number') {
    expect(typeof actual, path).toBe('number');
    expect(Math.abs((actual as number) - expected), path).toBeLessThan(1e-6);
  } else if (Array.isArray(expected)) {
    expect(Array.isArray(actual), path).toBe(true);
    expect((actual as unknown[]).length, path).toBe(expected.length);
    expected.forEach((e, i) => expectClose((actual as unknown[])[i], e, `${path}[${i}]`));
  } else if (expected && typeof expected === 'object') {
    expect(Object.keys(actual as object).sort(), path).toEqual(Object.keys(expected).sort());
    for (const [k, e] of Object.entries(expected)) expectClose((actual as Record<string, unknown>)[k], e, `${path}.${k}`);
  } else {
    expect(actual, path).toBe(expected);
  }
}
