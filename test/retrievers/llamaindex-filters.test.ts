/**
 * LlamaIndex `MetadataFilters` → declarative metadata filters: every operator LlamaIndex defines
 * selects the same documents as LlamaIndex's own `SimpleVectorStore` does (on scalar fields for the
 * scalar operators, array fields for ANY / ALL / CONTAINS), on the memory index and on PGlite;
 * TEXT_MATCH is refused. And the LlamaIndex `BgeM3HybridRetriever` accepts `MetadataFilters`
 * (before, they type-checked as a filter on a field named "filters" and matched nothing).
 */
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { FilterOperator, type MetadataFilters } from '@llamaindex/core/vector-store';
import { Document, NodeRelationship, SimpleVectorStore, TextNode, VectorStoreQueryMode } from 'llamaindex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3Error, BgeM3Model, compileFilter, MemoryHybridIndex, type HybridIndex } from '../../src/index.js';
import { BgeM3HybridRetriever, fromLlamaIndexFilters } from '../../src/llamaindex.js';
import { PgHybridIndex } from '../../src/postgres.js';
import { loadExpected, TINY_DIR } from '../helpers.js';

const METADATA: Record<string, unknown>[] = [
  { lang: 'de', year: 2019, tags: ['ml', 'ir'], note: 'x' },
  { lang: 'en', year: 2021, tags: ['ir'], note: '' },
  { lang: 'fr', year: 2023, tags: ['db'], note: null },
  { year: 2020, tags: ['ml'] },
  { lang: 'de', year: 2024, tags: ['db', 'ml', 'ir'], note: [] },
  { lang: 'en', tags: ['x'], note: ['a'] },
  { lang: 'es', year: 2022, tags: [], note: 'y' },
];

const f = (key: string, operator: `${FilterOperator}`, value?: string | number | string[] | number[]) => ({ key, operator, value });

const CASES: MetadataFilters[] = [
  { filters: [f('lang', '==', 'de')] },
  { filters: [f('year', '==', 2021)] },
  { filters: [f('lang', '!=', 'de')] },
  { filters: [f('year', '>', 2020)] },
  { filters: [f('year', '>=', 2020)] },
  { filters: [f('year', '<', 2022)] },
  { filters: [f('year', '<=', 2022)] },
  { filters: [f('lang', '>', 'en')] },
  { filters: [f('lang', 'in', ['de', 'fr'])] },
  { filters: [f('year', 'in', [2019, 2024, 1999])] },
  { filters: [f('lang', 'nin', ['de', 'en'])] },
  { filters: [f('tags', 'any', ['db', 'x'])] },
  { filters: [f('tags', 'all', ['ml', 'ir'])] },
  { filters: [f('tags', 'all', ['db'])] },
  { filters: [f('tags', 'contains', 'ir')] },
  { filters: [f('note', 'is_empty')] },
  { filters: [f('lang', 'is_empty')] },
  { filters: [f('lang', '==', 'de'), f('year', '>', 2020)] },
  { filters: [f('lang', '==', 'de'), f('year', '>', 2020)], condition: 'and' },
  { filters: [f('lang', '==', 'fr'), f('tags', 'contains', 'ml'), f('note', 'is_empty')], condition: 'or' },
  { filters: [f('lang', '!=', 'en'), f('year', 'nin', [2019]), f('tags', 'any', ['ml'])], condition: 'and' },
];

let pglite: PGlite;
let llamaStore: SimpleVectorStore;
beforeAll(async () => {
  pglite = new PGlite({ extensions: { vector } });
  await pglite.waitReady;
  llamaStore = new SimpleVectorStore({ embedModel: {} as never });
  await llamaStore.add(
    METADATA.map(
      (metadata, i) =>
        new TextNode({ id_: `n${i}`, text: `text ${i}`, metadata, embedding: [1, i, 0], relationships: { [NodeRelationship.SOURCE]: { nodeId: `d${i}`, metadata: {} } } }),
    ),
  );
});
afterAll(async () => {
  await pglite?.close();
});

/** What LlamaIndex's own SimpleVectorStore selects for the filters. */
async function llamaIndexSelects(filters: MetadataFilters): Promise<string[]> {
  const { ids } = await llamaStore.query({ queryEmbedding: [1, 0, 0], similarityTopK: 100, mode: VectorStoreQueryMode.DEFAULT, filters });
  return ids.map((id) => id.slice(1)).sort();
}

const encodedBackends: { name: string; open: () => Promise<HybridIndex> }[] = [
  { name: 'memory', open: async () => new MemoryHybridIndex({ dim: 3 }) },
  { name: 'PGlite', open: () => PgHybridIndex.open({ client: pglite, model: null, dim: 3, ann: false, table: `li_filters_${process.pid}_${Date.now() % 100000}` }) },
];

describe('MetadataFilters translation agrees with LlamaIndex', () => {
  it.each(CASES.map((c, i) => [i, c] as const))('case %i', async (_i, filters) => {
    const want = await llamaIndexSelects(filters);
    const matches = compileFilter(fromLlamaIndexFilters(filters)!);
    const got = METADATA.map((m, i) => (matches(m) ? String(i) : undefined)).filter((x): x is string => x !== undefined).sort();
    expect(got).toEqual(want);
  });

  it.each(encodedBackends)('on the $name backend', async ({ open }) => {
    const index = await open();
    await index.addEncoded(METADATA.map((metadata, i) => ({ id: String(i), text: `text ${i}`, metadata, dense: [1, i, 0], sparse: { [String(i + 1)]: 1 } })));
    for (const filters of CASES) {
      const found = await index.searchEncoded({ dense: [1, 0, 0], sparse: {} }, { k: 100, weights: { dense: 1, sparse: 0 }, filter: fromLlamaIndexFilters(filters) });
      expect(found.map((r) => r.id).sort()).toEqual(await llamaIndexSelects(filters));
    }
  });

  it('TEXT_MATCH cannot be expressed: a BgeM3Error, not an ignored filter', () => {
    const err = (() => {
      try {
        fromLlamaIndexFilters({ filters: [f('lang', FilterOperator.TEXT_MATCH, 'd')] });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(BgeM3Error);
    expect((err as BgeM3Error).code).toBe('INVALID_ARGUMENT');
    expect(Object.values(FilterOperator).filter((op) => op !== FilterOperator.TEXT_MATCH).every((op) => (err as Error).message.includes(op))).toBe(true);
  });
});

describe('BgeM3HybridRetriever (LlamaIndex) with MetadataFilters', () => {
  let model: BgeM3Model;
  let documents: Document[];
  beforeAll(async () => {
    model = await BgeM3Model.load(TINY_DIR);
    const texts = [...new Set(loadExpected().texts.map((t) => t.text))].filter((t) => t.trim().length > 0 && t.length < 600).slice(0, 30);
    documents = texts.map((text, i) => new Document({ text, id_: `doc-${i}`, metadata: { group: i % 3, n: i } }));
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('filters (and filter given MetadataFilters) are translated, not read as a field named "filters"', async () => {
    const filters: MetadataFilters = { filters: [f('group', '==', 1), f('n', '<', 20)], condition: 'and' };
    const query = 'How is the weather in the mountains today?';
    const viaFilters = await BgeM3HybridRetriever.fromDocuments(documents, { model, similarityTopK: 10, filters });
    const viaFilter = new BgeM3HybridRetriever({ index: viaFilters.index, similarityTopK: 10, filter: filters });
    const want = await viaFilters.index.search(query, { k: 10, filter: { $and: [{ group: { $eq: 1 } }, { n: { $lt: 20 } }] } });
    expect(want.length).toBeGreaterThan(0);
    for (const retriever of [viaFilters, viaFilter]) {
      const nodes = await retriever.retrieve(query);
      expect(nodes.map((n) => n.node.id_)).toEqual(want.map((r) => r.id));
      for (const n of nodes) expect(n.node.metadata).toMatchObject({ group: 1 });
    }
    expect(() => new BgeM3HybridRetriever({ index: viaFilters.index, filter: { group: 1 }, filters })).toThrow(/filter and filters are both given/);
    expect(() => new BgeM3HybridRetriever({ index: viaFilters.index, filters: { filters: [f('n', 'text_match', 'x')] } })).toThrow(/text_match/);
    // Declarative filters keep working as before.
    const declarative = new BgeM3HybridRetriever({ index: viaFilters.index, similarityTopK: 5, filter: { group: 2 } });
    for (const n of await declarative.retrieve(query)) expect(n.node.metadata.group).toBe(2);
  });
});
