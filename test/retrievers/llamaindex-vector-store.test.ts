/**
 * `BgeM3VectorStore` (LlamaIndex.TS) on the fixture model, on both backends (`MemoryHybridIndex`
 * and `PgHybridIndex` on PGlite), inside LlamaIndex's own machinery: `VectorStoreIndex` with a
 * storage context, its retrievers in every supported mode, `RetrieverQueryEngine`,
 * `ContextChatEngine` (MockLLM) and `IngestionPipeline` with a `SentenceSplitter`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { MockLLM } from '@llamaindex/core/llms/mock';
import { FilterOperator, VectorStoreQueryMode, type MetadataFilters } from '@llamaindex/core/vector-store';
import {
  ContextChatEngine,
  Document,
  IngestionPipeline,
  MetadataMode,
  NodeRelationship,
  RetrieverQueryEngine,
  SentenceSplitter,
  Settings,
  TextNode,
  VectorStoreIndex,
  storageContextFromDefaults,
} from 'llamaindex';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BgeM3Error, BgeM3Model, MemoryHybridIndex, type HybridIndex } from '../../src/index.js';
import { BgeM3Embedding, BgeM3Rerank, BgeM3VectorStore, fromLlamaIndexFilters } from '../../src/llamaindex.js';
import { PgHybridIndex } from '../../src/postgres.js';
import { loadExpected, TINY_DIR } from '../helpers.js';

let model: BgeM3Model;
let pglite: PGlite;
let documents: Document[];
let tables = 0;

beforeAll(async () => {
  model = await BgeM3Model.load(TINY_DIR);
  pglite = new PGlite({ extensions: { vector } });
  await pglite.waitReady;
  Settings.llm = new MockLLM();
  Settings.embedModel = new BgeM3Embedding({ model });
  const texts = [...new Set(loadExpected().texts.map((t) => t.text))].filter((t) => t.trim().length > 0 && t.length < 600).slice(0, 30);
  documents = texts.map((text, i) => new Document({ text, id_: `doc-${i}`, metadata: { source: `doc-${i}`, group: i % 3, n: i } }));
});
afterAll(async () => {
  await pglite?.close();
  await model?.dispose();
});

const BACKENDS: { name: string; open: () => Promise<HybridIndex> }[] = [
  { name: 'MemoryHybridIndex', open: async () => new MemoryHybridIndex({ model }) },
  { name: 'PgHybridIndex (PGlite)', open: () => PgHybridIndex.open({ client: pglite, model, table: `li_store_${process.pid}_${tables++}` }) },
];

const query = 'How does hybrid retrieval with dense and lexical matching work?';

describe.each(BACKENDS)('BgeM3VectorStore (LlamaIndex) on $name', ({ open }) => {
  let index: HybridIndex;
  let vectorStore: BgeM3VectorStore;
  let vsIndex: VectorStoreIndex;
  beforeAll(async () => {
    index = await open();
    vectorStore = new BgeM3VectorStore({ index, model });
    const original = model.encode.bind(model);
    let encoded = 0;
    const spy = vi.spyOn(model, 'encode').mockImplementation((texts, options) => {
      encoded += texts.length;
      return original(texts, options);
    });
    try {
      vsIndex = await VectorStoreIndex.fromDocuments(documents, { storageContext: await storageContextFromDefaults({ vectorStore }) });
    } finally {
      spy.mockRestore();
    }
    // Each node is encoded once (dense + sparse, by the store's embedModel), not again by add.
    expect(encoded).toBe(await index.count());
  });

  it('VectorStoreIndex.fromDocuments indexes the nodes with their text, metadata and source document', async () => {
    expect(vectorStore.storesText).toBe(true);
    expect(vectorStore.client()).toBe(index);
    expect(await index.count()).toBe(documents.length); // short texts: one node each
    const result = await vectorStore.query({ queryStr: documents[5]!.text, similarityTopK: 1, mode: VectorStoreQueryMode.HYBRID });
    const node = result.nodes![0]!;
    expect(node).toBeInstanceOf(TextNode);
    expect(node.getContent(MetadataMode.NONE)).toBe(documents[5]!.text);
    expect(node.metadata).toEqual(documents[5]!.metadata); // reserved keys are not handed back
    expect(node.sourceNode?.nodeId).toBe('doc-5');
    expect(result.ids[0]).toBe(node.id_);
  });

  it('retrievers in DEFAULT (dense), SPARSE and HYBRID mode rank as the index does', async () => {
    const dense = await vsIndex.asRetriever({ similarityTopK: 4 }).retrieve(query);
    const wantDense = await index.search(query, { k: 4, weights: { dense: 1, sparse: 0 } });
    expect(dense.map((n) => n.node.id_)).toEqual(wantDense.map((r) => r.id));
    dense.forEach((n, i) => expect(n.score).toBeCloseTo(wantDense[i]!.dense, 5));

    const sparse = await vsIndex.asRetriever({ similarityTopK: 4, mode: VectorStoreQueryMode.SPARSE }).retrieve(query);
    const wantSparse = await index.search(query, { k: 4, weights: { dense: 0, sparse: 1 } });
    expect(sparse.map((n) => n.node.id_)).toEqual(wantSparse.map((r) => r.id));
    sparse.forEach((n, i) => expect(n.score).toBeCloseTo(wantSparse[i]!.sparse, 5));

    const hybrid = await vsIndex.asRetriever({ similarityTopK: 4, mode: VectorStoreQueryMode.HYBRID }).retrieve(query);
    const wantHybrid = await index.search(query, { k: 4 }); // the paper's { dense: 1, sparse: 0.3 }
    expect(hybrid.map((n) => n.node.id_)).toEqual(wantHybrid.map((r) => r.id));
    hybrid.forEach((n, i) => expect(n.score).toBeCloseTo(wantHybrid[i]!.score, 5));
  });

  it('alpha maps to the leg weights { dense: alpha, sparse: 1 − alpha }', async () => {
    for (const alpha of [0, 0.25, 0.7, 1]) {
      const result = await vectorStore.query({ queryStr: query, similarityTopK: 5, mode: VectorStoreQueryMode.HYBRID, alpha });
      const want = await index.search(query, { k: 5, weights: { dense: alpha, sparse: 1 - alpha } });
      expect(result.ids).toEqual(want.map((r) => r.id));
      result.similarities.forEach((s, i) => expect(s).toBeCloseTo(want[i]!.score, 5));
    }
    const byStore = new BgeM3VectorStore({ index, model, alpha: 0.4 });
    const viaDefault = await byStore.query({ queryStr: query, similarityTopK: 5, mode: VectorStoreQueryMode.HYBRID });
    expect(viaDefault.ids).toEqual((await index.search(query, { k: 5, weights: { dense: 0.4, sparse: 0.6 } })).map((r) => r.id));
    await expect(vectorStore.query({ queryStr: query, similarityTopK: 5, mode: VectorStoreQueryMode.HYBRID, alpha: 1.5 })).rejects.toThrow(/alpha must be a number in \[0, 1\]/);
  });

  it('MetadataFilters (AND / OR, every translatable operator) filter the results', async () => {
    const filters: MetadataFilters = {
      filters: [
        { key: 'group', value: 1, operator: FilterOperator.EQ },
        { key: 'n', value: 20, operator: FilterOperator.GTE },
      ],
      condition: 'or',
    };
    const retrieved = await vsIndex.asRetriever({ similarityTopK: 8, mode: VectorStoreQueryMode.HYBRID, filters }).retrieve(query);
    const want = await index.search(query, { k: 8, filter: { $or: [{ group: 1 }, { n: { $gte: 20 } }] } });
    expect(retrieved.map((n) => n.node.id_)).toEqual(want.map((r) => r.id));
    for (const n of retrieved) expect(n.node.metadata.group === 1 || n.node.metadata.n >= 20).toBe(true);

    const and = await vectorStore.query({
      queryStr: query,
      similarityTopK: 30,
      mode: VectorStoreQueryMode.DEFAULT,
      filters: { filters: [{ key: 'group', value: [0, 2], operator: 'in' }, { key: 'n', value: 10, operator: '<' }, { key: 'source', value: 'doc-3', operator: '!=' }] },
    });
    expect(and.nodes!.length).toBeGreaterThan(0);
    for (const n of and.nodes!) {
      expect([0, 2]).toContain(n.metadata.group);
      expect(n.metadata.n).toBeLessThan(10);
      expect(n.metadata.source).not.toBe('doc-3');
    }
    await expect(vectorStore.query({ queryStr: query, similarityTopK: 3, mode: VectorStoreQueryMode.DEFAULT, filters: { filters: [{ key: 'source', value: 'doc', operator: 'text_match' }] } })).rejects.toThrow(BgeM3Error);
  });

  it('RetrieverQueryEngine and ContextChatEngine (MockLLM) over the index, with the BgeM3Rerank postprocessor', async () => {
    const retriever = vsIndex.asRetriever({ similarityTopK: 6, mode: VectorStoreQueryMode.HYBRID });
    const engine = new RetrieverQueryEngine(retriever, undefined, [new BgeM3Rerank({ model, topN: 2 })]);
    const response = await engine.query({ query });
    expect(response.sourceNodes).toHaveLength(2);
    const candidates = (await index.search(query, { k: 6 })).map((r) => r.id);
    for (const n of response.sourceNodes!) expect(candidates).toContain(n.node.id_);
    expect(typeof response.message.content).toBe('string');

    const chat = new ContextChatEngine({ retriever: vsIndex.asRetriever({ similarityTopK: 3 }) });
    const reply = await chat.chat({ message: query });
    expect(typeof reply.message.content).toBe('string');
    expect(reply.sourceNodes!.map((n) => n.node.id_)).toEqual((await index.search(query, { k: 3, weights: { dense: 1, sparse: 0 } })).map((r) => r.id));
    const queryEngine = vsIndex.asQueryEngine({ similarityTopK: 3 });
    expect((await queryEngine.query({ query })).sourceNodes).toHaveLength(3);
  });

  it('IngestionPipeline with a SentenceSplitter and the store; delete(refDocId) removes a document’s nodes', async () => {
    const store = new BgeM3VectorStore({ index: await open(), model });
    const long = new Document({ id_: 'long-doc', text: Array.from({ length: 40 }, (_, i) => `Sentence number ${i} talks about topic ${i % 5}.`).join(' '), metadata: { kind: 'long' } });
    const short = new Document({ id_: 'short-doc', text: 'A short note about BGE-M3 and hybrid search.', metadata: { kind: 'short' } });
    const pipeline = new IngestionPipeline({ transformations: [new SentenceSplitter({ chunkSize: 40, chunkOverlap: 0 }), store.embedModel], vectorStore: store });
    const nodes = await pipeline.run({ documents: [long, short] });
    expect(nodes.length).toBeGreaterThan(2);
    const index = store.client();
    expect(await index.count()).toBe(nodes.length);
    const all = await store.query({ queryStr: 'topic', similarityTopK: 100, mode: VectorStoreQueryMode.HYBRID });
    const fromLong = all.nodes!.filter((n) => n.sourceNode?.nodeId === 'long-doc');
    expect(fromLong.length).toBe(nodes.length - 1);
    expect(fromLong.every((n) => n.metadata.kind === 'long')).toBe(true);

    await store.delete('long-doc');
    expect(await index.count()).toBe(1);
    const left = await store.query({ queryStr: 'topic', similarityTopK: 10, mode: VectorStoreQueryMode.SPARSE });
    expect(left.nodes!.every((n) => n.sourceNode?.nodeId === 'short-doc')).toBe(true);
    await store.delete('no-such-doc');
    expect(await index.count()).toBe(1);
  });

  it('VectorStoreIndex.deleteRefDoc and upserts go through the store', async () => {
    const store = new BgeM3VectorStore({ index: await open(), model });
    const idx = await VectorStoreIndex.fromDocuments(documents.slice(0, 6), { storageContext: await storageContextFromDefaults({ vectorStore: store }) });
    expect(await store.client().count()).toBe(6);
    await idx.deleteRefDoc('doc-2');
    expect(await store.client().count()).toBe(5);
    const hits = await idx.asRetriever({ similarityTopK: 10 }).retrieve(documents[2]!.text);
    expect(hits.map((h) => h.node.sourceNode?.nodeId)).not.toContain('doc-2');
    // Re-adding a node id replaces it.
    const node = new TextNode({ id_: 'n1', text: 'first version', metadata: { v: 1 }, excludedLlmMetadataKeys: ['v'] });
    await store.add([node]);
    await store.add([new TextNode({ id_: 'n1', text: 'second version', metadata: { v: 2 }, excludedLlmMetadataKeys: ['v'] })]);
    expect(await store.client().count()).toBe(6);
    const [got] = (await store.query({ queryStr: 'second version', similarityTopK: 1, mode: VectorStoreQueryMode.HYBRID, filters: { filters: [{ key: 'v', value: 2, operator: '==' }] } })).nodes!;
    expect(got!.getContent(MetadataMode.NONE)).toBe('second version');
    expect(got!.excludedLlmMetadataKeys).toEqual(['v']);
    expect(got!.getContent(MetadataMode.LLM)).not.toContain('v: 2');
    expect(got!.relationships[NodeRelationship.SOURCE]).toBeUndefined(); // its own ref doc
  });

  it('refuses what it cannot do: unsupported modes, docIds, missing query text', async () => {
    await expect(vectorStore.query({ queryStr: query, similarityTopK: 3, mode: VectorStoreQueryMode.MMR })).rejects.toThrow(/mode "mmr" is not supported/);
    await expect(vectorStore.query({ queryStr: query, similarityTopK: 3, mode: VectorStoreQueryMode.DEFAULT, docIds: ['doc-1'] })).rejects.toThrow(/docIds is not supported/);
    await expect(vectorStore.query({ queryEmbedding: [1, 2], similarityTopK: 3, mode: VectorStoreQueryMode.SPARSE })).rejects.toThrow(/needs queryStr/);
  });
});

describe('BgeM3VectorStore (LlamaIndex): construction, persistence, filters', () => {
  it('default index: a MemoryHybridIndex with the model; the index’s model when only an index is given', async () => {
    const store = new BgeM3VectorStore({ model });
    expect(store.client()).toBeInstanceOf(MemoryHybridIndex);
    expect(await store.getModel()).toBe(model);
    const fromIndex = new BgeM3VectorStore({ index: new MemoryHybridIndex({ model }) });
    expect(await fromIndex.getModel()).toBe(model);
    const pg = await PgHybridIndex.open({ client: pglite, model, table: `li_store_${process.pid}_${tables++}` });
    expect(() => new BgeM3VectorStore({ index: pg })).toThrow(/pass the model it was built with/);
    expect(() => new BgeM3VectorStore({ index: {} as never })).toThrow(/index option must be a HybridIndex/);
    expect(() => new BgeM3VectorStore({ model, alpha: -1 })).toThrow(/alpha must be/);
  });

  it('persists through the index: MemoryHybridIndex.save / load, then VectorStoreIndex.fromVectorStore', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bge-m3-li-store-'));
    try {
      const store = new BgeM3VectorStore({ model });
      await VectorStoreIndex.fromDocuments(documents.slice(0, 8), { storageContext: await storageContextFromDefaults({ vectorStore: store }) });
      await (store.client() as MemoryHybridIndex).save(dir);
      const reopened = new BgeM3VectorStore({ index: await MemoryHybridIndex.load(dir, model) });
      const again = await VectorStoreIndex.fromVectorStore(reopened);
      const a = await again.asRetriever({ similarityTopK: 3, mode: VectorStoreQueryMode.HYBRID }).retrieve(query);
      const b = await store.query({ queryStr: query, similarityTopK: 3, mode: VectorStoreQueryMode.HYBRID });
      expect(a.map((n) => n.node.id_)).toEqual(b.ids);
      await reopened.delete('doc-1');
      expect(await reopened.client().count()).toBe(7);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fromLlamaIndexFilters: translations and refusals', () => {
    expect(fromLlamaIndexFilters(undefined)).toBeUndefined();
    expect(fromLlamaIndexFilters({ filters: [] })).toBeUndefined();
    expect(fromLlamaIndexFilters({ filters: [{ key: 'a', value: 1, operator: '==' }] })).toEqual({ a: { $eq: 1 } });
    expect(fromLlamaIndexFilters({ filters: [{ key: 'a', value: 'x', operator: '!=' }, { key: 'b', value: [1, 2], operator: 'nin' }], condition: 'or' })).toEqual({
      $or: [{ a: { $exists: true, $ne: 'x' } }, { b: { $exists: true, $nin: [1, 2] } }],
    });
    expect(fromLlamaIndexFilters({ filters: [{ key: 'tags', value: ['x', 'y'], operator: 'all' }] })).toEqual({ $and: [{ tags: { $eq: 'x' } }, { tags: { $eq: 'y' } }] });
    expect(() => fromLlamaIndexFilters({ filters: [{ key: 'a', value: 'x', operator: 'text_match' }] })).toThrow(/text_match.*cannot be expressed/);
    expect(() => fromLlamaIndexFilters({ filters: [{ key: 'a', value: 'x', operator: 'regex' as never }] })).toThrow(/unknown operator "regex"/);
    expect(() => fromLlamaIndexFilters({ filters: [{ key: 'a', value: 1, operator: '==' }], condition: 'not' as never })).toThrow(/condition must be 'and' or 'or'/);
    expect(() => fromLlamaIndexFilters({ filters: [{ key: 'a', value: 'x', operator: 'in' }] })).toThrow(/must be an array/);
    expect(() => fromLlamaIndexFilters({ filters: [{ key: 'a', value: [1], operator: '>' }] })).toThrow(/number or a string/);
  });
});
