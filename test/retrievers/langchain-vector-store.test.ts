/**
 * `BgeM3VectorStore` (LangChain.js) on the fixture model, on both backends (`MemoryHybridIndex` and
 * `PgHybridIndex` on PGlite), inside LangChain's own machinery: `VectorStoreRetriever`,
 * `ContextualCompressionRetriever` with `BgeM3Reranker`, and an LCEL chain with a fake chat model.
 * Results are checked against direct index searches (the fixture has random weights).
 */
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { ContextualCompressionRetriever } from '@langchain/classic/retrievers/contextual_compression';
import { Document, type DocumentInterface } from '@langchain/core/documents';
import { ChatPromptTemplate } from '@langchain/core/prompts';
import { RunnableLambda, RunnablePassthrough, RunnableSequence } from '@langchain/core/runnables';
import { StringOutputParser } from '@langchain/core/output_parsers';
import { FakeListChatModel } from '@langchain/core/utils/testing';
import { maximalMarginalRelevance } from '@langchain/core/utils/math';
import { VectorStoreRetriever } from '@langchain/core/vectorstores';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3Error, BgeM3Model, dot, MemoryHybridIndex, type HybridIndex } from '../../src/index.js';
import { BgeM3Embeddings, BgeM3Reranker, BgeM3VectorStore, BgeM3VectorStoreRetriever } from '../../src/langchain.js';
import { PgHybridIndex } from '../../src/postgres.js';
import { loadExpected, TINY_DIR } from '../helpers.js';

let model: BgeM3Model;
let embeddings: BgeM3Embeddings;
let pglite: PGlite;
let docs: Document[];
let tables = 0;

beforeAll(async () => {
  model = await BgeM3Model.load(TINY_DIR);
  embeddings = new BgeM3Embeddings({ model });
  pglite = new PGlite({ extensions: { vector } });
  await pglite.waitReady;
  const texts = [...new Set(loadExpected().texts.map((t) => t.text))].filter((t) => t.trim().length > 0 && t.length < 600).slice(0, 40);
  docs = texts.map((text, i) => new Document({ pageContent: text, metadata: { source: `doc-${i}`, lang: i % 3, n: i }, id: `id-${i}` }));
});
afterAll(async () => {
  await pglite?.close();
  await model?.dispose();
});

const BACKENDS: { name: string; open: () => Promise<HybridIndex> }[] = [
  { name: 'MemoryHybridIndex', open: async () => new MemoryHybridIndex({ model }) },
  { name: 'PgHybridIndex (PGlite)', open: () => PgHybridIndex.open({ client: pglite, model, table: `lc_store_${process.pid}_${tables++}` }) },
];

const ids = (found: DocumentInterface[]) => found.map((d) => d.id);

describe.each(BACKENDS)('BgeM3VectorStore on $name', ({ open }) => {
  let index: HybridIndex;
  let store: BgeM3VectorStore;
  beforeAll(async () => {
    index = await open();
    store = await BgeM3VectorStore.fromDocuments(docs, embeddings, { index });
  });

  it('fromDocuments keeps ids and metadata; text search is hybrid by default with the scores in metadata', async () => {
    expect(store.index).toBe(index);
    expect(await index.count()).toBe(docs.length);
    const query = docs[4]!.pageContent;
    const found = await store.similaritySearchWithScore(query, 5);
    const direct = await index.search(query, { k: 5 });
    expect(found.map(([d]) => d.id)).toEqual(direct.map((r) => r.id));
    expect(found[0]![0].id).toBe('id-4');
    found.forEach(([doc, score], i) => {
      const r = direct[i]!;
      expect(score).toBeCloseTo(r.score, 6);
      expect(doc.pageContent).toBe(r.text);
      expect(doc.metadata).toMatchObject({ ...r.metadata, hybridScore: expect.closeTo(r.score, 6), denseScore: expect.closeTo(r.dense, 6), sparseScore: expect.closeTo(r.sparse, 6) });
    });
    expect(ids(await store.similaritySearch(query, 5))).toEqual(direct.map((r) => r.id));
    expect((await store.similaritySearch(query)).length).toBe(4); // LangChain's default k
  });

  it("searchType 'dense' / 'sparse' rank by one leg (weights { dense: 1, sparse: 0 } / { dense: 0, sparse: 1 })", async () => {
    const query = 'How does hybrid retrieval with dense and lexical matching work?';
    const dense = await store.searchWithOptions(query, { k: 6, searchType: 'dense' });
    const wantDense = await index.search(query, { k: 6, weights: { dense: 1, sparse: 0 } });
    expect(dense.map(([d]) => d.id)).toEqual(wantDense.map((r) => r.id));
    dense.forEach(([d, s]) => expect(s).toBeCloseTo(d.metadata.denseScore as number, 6));

    const sparse = await store.searchWithOptions(query, { k: 6, searchType: 'sparse' });
    const wantSparse = await index.search(query, { k: 6, weights: { dense: 0, sparse: 1 } });
    expect(sparse.map(([d]) => d.id)).toEqual(wantSparse.map((r) => r.id));
    sparse.forEach(([d, s]) => expect(s).toBeCloseTo(d.metadata.sparseScore as number, 6));

    const denseStore = new BgeM3VectorStore(embeddings, { index, searchType: 'dense' });
    expect(ids(await denseStore.similaritySearch(query, 6))).toEqual(wantDense.map((r) => r.id));
    await expect(store.searchWithOptions(query, { searchType: 'bm25' as never })).rejects.toThrow(/'hybrid'.*'dense' or 'sparse'/);
  });

  it('similaritySearchVectorWithScore is the dense leg alone', async () => {
    const query = docs[7]!.pageContent;
    const vectorHits = await store.similaritySearchVectorWithScore(await embeddings.embedQuery(query), 5);
    const want = await index.search(query, { k: 5, weights: { dense: 1, sparse: 0 } });
    expect(vectorHits.map(([d]) => d.id)).toEqual(want.map((r) => r.id));
    vectorHits.forEach(([, score], i) => expect(score).toBeCloseTo(want[i]!.dense, 5));
  });

  it('declarative filters, in every search method', async () => {
    const query = docs[2]!.pageContent;
    const filter = { $or: [{ lang: 1 }, { n: { $gte: 30 } }] };
    const found = await store.similaritySearch(query, 8, filter);
    const want = await index.search(query, { k: 8, filter });
    expect(ids(found)).toEqual(want.map((r) => r.id));
    for (const d of found) expect(d.metadata.lang === 1 || (d.metadata.n as number) >= 30).toBe(true);
    const byVector = await store.similaritySearchVectorWithScore(await embeddings.embedQuery(query), 8, { lang: 2 });
    expect(byVector.length).toBeGreaterThan(0);
    for (const [d] of byVector) expect(d.metadata.lang).toBe(2);
    const mmr = await store.maxMarginalRelevanceSearch(query, { k: 3, fetchK: 10, filter: { lang: 0 } });
    for (const d of mmr) expect(d.metadata.lang).toBe(0);
    await expect(store.similaritySearch(query, 3, { lang: { $regex: 'x' } } as never)).rejects.toThrow(/unknown operator \$regex/);
  });

  it("maxMarginalRelevanceSearch: LangChain's maximalMarginalRelevance over the candidates' dense vectors", async () => {
    const query = 'The string displayed on a tab label';
    const mmr = await store.maxMarginalRelevanceSearch(query, { k: 4, fetchK: 12, lambda: 0.3 });
    const candidates = await store.similaritySearch(query, 12);
    const { denseVecs } = await model.encode([query, ...candidates.map((d) => d.pageContent)]);
    const [q, ...passages] = denseVecs!.map((v) => Array.from(v));
    const picked = maximalMarginalRelevance(q!, passages, 0.3, 4);
    expect(ids(mmr)).toEqual(picked.map((i) => candidates[i]!.id));
    // lambda 1: relevance only, i.e. the candidates in order of dense similarity to the query.
    const relevance = await store.maxMarginalRelevanceSearch(query, { k: 4, fetchK: 12, lambda: 1 });
    const byDense = candidates.map((d, i) => ({ id: d.id, s: dot(q!, passages[i]!) })).sort((a, b) => b.s - a.s);
    expect(ids(relevance)).toEqual(byDense.slice(0, 4).map((x) => x.id));
  });

  it('asRetriever: a VectorStoreRetriever (similarity, dense, sparse, mmr) with per-call k, filter and searchType', async () => {
    const query = docs[9]!.pageContent;
    const retriever = store.asRetriever({ k: 3, filter: { lang: 0 } });
    expect(retriever).toBeInstanceOf(VectorStoreRetriever);
    expect(retriever).toBeInstanceOf(BgeM3VectorStoreRetriever);
    expect(retriever.tags).toContain('bge-m3');
    const hybrid = await retriever.invoke(query);
    expect(ids(hybrid)).toEqual((await index.search(query, { k: 3, filter: { lang: 0 } })).map((r) => r.id));

    const perCall = await retriever.invoke(query, { k: 5, filter: { lang: 1 }, searchType: 'dense' });
    expect(ids(perCall)).toEqual((await index.search(query, { k: 5, filter: { lang: 1 }, weights: { dense: 1, sparse: 0 } })).map((r) => r.id));

    const sparse = store.asRetriever({ k: 4, searchType: 'sparse' });
    expect(ids(await sparse.invoke(query))).toEqual((await index.search(query, { k: 4, weights: { dense: 0, sparse: 1 } })).map((r) => r.id));

    const mmr = store.asRetriever({ k: 3, searchType: 'mmr', searchKwargs: { fetchK: 10, lambda: 0.5 } });
    expect(ids(await mmr.invoke(query))).toEqual(ids(await store.maxMarginalRelevanceSearch(query, { k: 3, fetchK: 10, lambda: 0.5 })));

    expect(ids(await store.asRetriever(2).invoke(query))).toEqual((await index.search(query, { k: 2 })).map((r) => r.id));
    expect(() => store.asRetriever({ searchType: 'keyword' as never })).toThrow(/searchType must be one of/);
  });

  it('ContextualCompressionRetriever over the store retriever with the BgeM3Reranker compressor', async () => {
    const query = 'How does hybrid retrieval with dense and lexical matching work?';
    const compression = new ContextualCompressionRetriever({ baseRetriever: store.asRetriever(10), baseCompressor: new BgeM3Reranker({ model, topN: 3 }) });
    const reranked = await compression.invoke(query);
    const candidates = await store.similaritySearch(query, 10);
    const scores = await model.computeScore(
      candidates.map((d) => [query, d.pageContent]),
      { weightsForDifferentModes: [0.4, 0.2, 0.4] },
    );
    const best = candidates
      .map((d, i) => ({ id: d.id, score: scores['colbert+sparse+dense'][i]! }))
      .sort((a, b) => b.score - a.score)
      .slice(0, 3);
    expect(ids(reranked)).toEqual(best.map((b) => b.id));
    for (const d of reranked) expect(d.metadata.hybridScore).toBeTypeOf('number');
  });

  it('in an LCEL chain (prompt → fake chat model), with per-call options passed down by the chain config', async () => {
    const retriever = store.asRetriever(3);
    let seenPrompt = '';
    const chain = RunnableSequence.from([
      { context: retriever.pipe((found: DocumentInterface[]) => found.map((d) => `[${d.id}] ${d.pageContent}`).join('\n')), question: new RunnablePassthrough() },
      ChatPromptTemplate.fromTemplate('Context:\n{context}\n\nQuestion: {question}'),
      RunnableLambda.from((value: { toString(): string }) => {
        seenPrompt = value.toString();
        return value;
      }),
      new FakeListChatModel({ responses: ['a canned answer'] }),
      new StringOutputParser(),
    ]);
    const question = 'Guten Morgen, wie geht es?';
    expect(await chain.invoke(question)).toBe('a canned answer');
    const want = await index.search(question, { k: 3 });
    for (const r of want) expect(seenPrompt).toContain(`[${r.id}] `);

    await chain.invoke(question, { k: 1, filter: { lang: 2 } } as never);
    const one = await index.search(question, { k: 1, filter: { lang: 2 } });
    expect(seenPrompt.match(/\[id-\d+\] /g)).toEqual([`[${one[0]!.id}] `]);
  });

  it('addDocuments: ids from options.ids or doc.id, upsert by id; delete by ids or by filter', async () => {
    const own = new BgeM3VectorStore(embeddings, { index: await open() });
    const added = await own.addDocuments([new Document({ pageContent: 'alpha text', metadata: { g: 1 }, id: 'a' }), new Document({ pageContent: 'beta text', metadata: { g: 2 } })], { ids: ['x', 'y'] });
    expect(added).toEqual(['x', 'y']);
    const fromDocIds = await own.addDocuments([new Document({ pageContent: 'gamma text', metadata: { g: 1 }, id: 'g' }), new Document({ pageContent: 'delta text', metadata: { g: 3 } })]);
    expect(fromDocIds[0]).toBe('g');
    expect(fromDocIds[1]).toMatch(/^[0-9a-f-]{36}$/);
    expect(await own.index.count()).toBe(4);
    await own.addDocuments([new Document({ pageContent: 'alpha replaced', metadata: { g: 9 }, id: 'x' })]);
    expect(await own.index.count()).toBe(4);
    const [top] = await own.similaritySearch('alpha replaced', 1, { g: 9 });
    expect(top).toMatchObject({ id: 'x', pageContent: 'alpha replaced' });
    await own.delete({ ids: ['x', 'unknown'] });
    expect(await own.index.count()).toBe(3);
    await own.delete({ filter: { g: { $in: [1, 3] } } });
    expect(await own.index.count()).toBe(1);
    expect((await own.similaritySearch('text', 4)).map((d) => d.id)).toEqual(['y']);
    await expect(own.delete({})).rejects.toThrow(/expects \{ ids/);
    await expect(own.addDocuments([new Document({ pageContent: 'a' })], { ids: ['1', '2'] })).rejects.toThrow(/one id per document/);
  });
});

describe('BgeM3VectorStore (LangChain): construction and refusals', () => {
  it('default index: a MemoryHybridIndex with the embeddings’ model; fromTexts with one or many metadata objects', async () => {
    const store = await BgeM3VectorStore.fromTexts(['one text', 'two texts'], [{ i: 1 }, { i: 2 }], embeddings);
    expect(store.index).toBeInstanceOf(MemoryHybridIndex);
    expect(await (store.index as MemoryHybridIndex).getModel()).toBe(model);
    expect((await store.similaritySearch('two texts', 2)).map((d) => d.metadata.i).sort()).toEqual([1, 2]);
    const shared = await BgeM3VectorStore.fromTexts(['x', 'y'], { tag: 't' }, embeddings);
    expect((await shared.similaritySearch('x', 2)).map((d) => d.metadata.tag)).toEqual(['t', 't']);
    expect(store._vectorstoreType()).toBe('bge-m3');
    await expect(BgeM3VectorStore.fromTexts(['a'], [{}, {}], embeddings)).rejects.toThrow(/1 texts but 2 metadata/);
  });

  it('addVectors is refused with a BgeM3Error pointing to addDocuments', async () => {
    const store = new BgeM3VectorStore(embeddings);
    const err = await store.addVectors([[0.1, 0.2]], [new Document({ pageContent: 'x' })]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BgeM3Error);
    expect((err as BgeM3Error).code).toBe('INVALID_ARGUMENT');
    expect((err as Error).message).toMatch(/cannot carry the sparse.*addDocuments/);
  });

  it('works over a model-less index (the store encodes with the embeddings’ model)', async () => {
    const index = new MemoryHybridIndex({ dim: model.dim });
    const store = await BgeM3VectorStore.fromDocuments(docs.slice(0, 10), embeddings, { index });
    const found = await store.similaritySearch(docs[3]!.pageContent, 3);
    expect(found[0]!.id).toBe('id-3');
  });

  it('rejects bad embeddings, index and options at construction', () => {
    expect(() => new BgeM3VectorStore({} as never)).toThrow(/must be a BgeM3Embeddings/);
    expect(() => new BgeM3VectorStore(embeddings, { index: {} as never })).toThrow(/index option must be a HybridIndex/);
    expect(() => new BgeM3VectorStore(embeddings, { searchType: 'exact' as never })).toThrow(/searchType must be/);
    expect(() => new BgeM3VectorStore(embeddings, { fusion: 'sum' as never })).toThrow(/fusion must be/);
  });
});
