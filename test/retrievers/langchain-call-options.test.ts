/**
 * Per-call options of the LangChain retrievers: `invoke(query, { k, filter, signal, timeout })`
 * reaches the search (LangChain's `BaseRetriever.invoke` alone would drop them), callbacks still
 * fire, an abort rejects promptly with LangChain's abort error and the model stays usable.
 */
import { BaseCallbackHandler } from '@langchain/core/callbacks/base';
import { Document, type DocumentInterface } from '@langchain/core/documents';
import { RunnableLambda } from '@langchain/core/runnables';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BgeM3Model, MemoryHybridIndex, type HybridIndex, type HybridSearchOptions, type HybridSearchResult } from '../../src/index.js';
import { BgeM3Embeddings, BgeM3HybridRetriever, BgeM3VectorStore } from '../../src/langchain.js';
import { loadExpected, TINY_DIR } from '../helpers.js';

let model: BgeM3Model;
let index: MemoryHybridIndex;
let docs: Document[];
beforeAll(async () => {
  model = await BgeM3Model.load(TINY_DIR);
  const texts = [...new Set(loadExpected().texts.map((t) => t.text))].filter((t) => t.trim().length > 0 && t.length < 600).slice(0, 30);
  docs = texts.map((text, i) => new Document({ pageContent: text, metadata: { lang: i % 3 }, id: `id-${i}` }));
  index = new MemoryHybridIndex({ model });
  await index.add(docs.map((d) => ({ id: d.id, text: d.pageContent, metadata: d.metadata })));
});
afterAll(async () => {
  await model?.dispose();
});

/** An index whose search never finishes unless aborted (to check that an abort is prompt). */
class HangingIndex implements HybridIndex {
  searches: HybridSearchOptions[] = [];
  async count() {
    return 0;
  }
  async add(): Promise<string[]> {
    return [];
  }
  addEncoded(): string[] {
    return [];
  }
  async delete() {
    return 0;
  }
  search(_query: string, options: HybridSearchOptions = {}): Promise<HybridSearchResult[]> {
    this.searches.push(options);
    return new Promise((_, reject) => options.signal?.addEventListener('abort', () => reject(options.signal!.reason), { once: true }));
  }
  searchEncoded(_query: unknown, options: HybridSearchOptions = {}): Promise<HybridSearchResult[]> {
    return this.search('', options);
  }
}

class Events extends BaseCallbackHandler {
  name = 'events';
  starts = 0;
  ends = 0;
  errors: unknown[] = [];
  override handleRetrieverStart() {
    this.starts++;
  }
  override handleRetrieverEnd() {
    this.ends++;
  }
  override handleRetrieverError(err: unknown) {
    this.errors.push(err);
  }
}

const ids = (found: DocumentInterface[]) => found.map((d) => d.id);
const query = 'How does hybrid retrieval with dense and lexical matching work?';

describe('BgeM3HybridRetriever per-call options', () => {
  it('k, filter and other search options given to invoke override the retriever’s for that call', async () => {
    const retriever = new BgeM3HybridRetriever({ index, k: 3, filter: { lang: 0 } });
    expect(ids(await retriever.invoke(query))).toEqual((await index.search(query, { k: 3, filter: { lang: 0 } })).map((r) => r.id));
    const perCall = await retriever.invoke(query, { k: 6, filter: { lang: 2 }, fusion: 'rrf' });
    expect(ids(perCall)).toEqual((await index.search(query, { k: 6, filter: { lang: 2 }, fusion: 'rrf' })).map((r) => r.id));
    for (const d of perCall) expect(d.metadata.lang).toBe(2);
    // The next call without options is back to the retriever's own.
    expect(await retriever.invoke(query)).toHaveLength(3);
    // Also through batch, withConfig and callbacks-as-options (how LangChain's own retrievers call).
    const [a, b] = await retriever.batch([query, query], { k: 2 } as never);
    expect(a).toHaveLength(2);
    expect(b).toHaveLength(2);
    expect(await retriever.withConfig({ k: 4 } as never).invoke(query)).toHaveLength(4);
    const events = new Events();
    expect(await retriever.invoke(query, [events] as never)).toHaveLength(3); // a callbacks array, as LangChain's own retrievers pass
    expect([events.starts, events.ends]).toEqual([1, 1]);
    await expect(retriever.invoke(query, { k: 0 })).rejects.toThrow(/k must be a positive integer/);
  });

  it('an aborted signal rejects with LangChain’s abort error, the retriever error callback fires, and the model stays usable', async () => {
    const retriever = new BgeM3HybridRetriever({ index, k: 3 });
    const controller = new AbortController();
    controller.abort();
    const events = new Events();
    const err = await retriever.invoke(query, { signal: controller.signal, callbacks: [events] }).catch((e: unknown) => e);
    expect(err).toBe(controller.signal.reason); // what raceWithSignal / getAbortSignalError give: the reason
    expect((err as Error).name).toBe('AbortError');
    expect(events.errors).toEqual([err]);

    // Aborted while the query is being encoded (the encode call is in flight).
    const later = new AbortController();
    const original = model.encode.bind(model);
    let encoding = 0;
    const spy = vi.spyOn(model, 'encode').mockImplementation((texts, options) => {
      const running = original(texts, options);
      encoding++;
      later.abort(new Error('user cancelled'));
      return running;
    });
    try {
      await expect(retriever.invoke(query, { signal: later.signal })).rejects.toThrow('user cancelled');
      expect(encoding).toBe(1);
    } finally {
      spy.mockRestore();
    }

    // The model still works: the same retriever and the engine answer.
    expect(ids(await retriever.invoke(query))).toEqual((await index.search(query, { k: 3 })).map((r) => r.id));
    expect((await model.encode(['still here'])).denseVecs).toHaveLength(1);
  });

  it('signal and timeout reach the index and reject promptly even when the index does not finish', async () => {
    const hanging = new HangingIndex();
    const retriever = new BgeM3HybridRetriever({ index: hanging });
    const started = Date.now();
    const err = await retriever.invoke(query, { timeout: 50 }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(2000);
    expect((err as Error).name).toBe('TimeoutError');
    expect(hanging.searches[0]!.signal).toBeInstanceOf(AbortSignal);

    const controller = new AbortController();
    const pending = retriever.invoke(query, { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('per-call options reach a retriever inside a chain (LangChain passes the config down)', async () => {
    const retriever = new BgeM3HybridRetriever({ index, k: 5 });
    const chain = RunnableLambda.from((q: string) => q).pipe(retriever);
    expect(await chain.invoke(query)).toHaveLength(5);
    expect(await chain.invoke(query, { k: 2 } as never)).toHaveLength(2);
    const controller = new AbortController();
    controller.abort();
    await expect(chain.invoke(query, { signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('BgeM3VectorStore retriever per-call options', () => {
  it('k, filter, searchType, fetchK / lambda per call; signal and timeout abort', async () => {
    const embeddings = new BgeM3Embeddings({ model });
    const store = await BgeM3VectorStore.fromDocuments(docs, embeddings);
    const retriever = store.asRetriever(3);
    expect(await retriever.invoke(query)).toHaveLength(3);
    const dense = await retriever.invoke(query, { k: 5, filter: { lang: 1 }, searchType: 'dense' });
    const wantDense = await store.searchWithOptions(query, { k: 5, filter: { lang: 1 }, searchType: 'dense' });
    expect(ids(dense)).toEqual(wantDense.map(([d]) => d.id));
    for (const d of dense) expect(d.metadata.lang).toBe(1);
    const mmr = await retriever.invoke(query, { searchType: 'mmr', k: 2, fetchK: 8, lambda: 0.2 });
    expect(ids(mmr)).toEqual(ids(await store.maxMarginalRelevanceSearch(query, { k: 2, fetchK: 8, lambda: 0.2 })));

    const controller = new AbortController();
    controller.abort();
    await expect(retriever.invoke(query, { signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' });
    const hangingStore = new BgeM3VectorStore(embeddings, { index: new HangingIndex() });
    await expect(hangingStore.asRetriever(2).invoke(query, { timeout: 50 })).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(await retriever.invoke(query)).toHaveLength(3); // still usable
  });
});
