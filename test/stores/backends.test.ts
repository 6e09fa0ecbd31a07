/**
 * The shared backend suite: the same checks against `MemoryHybridIndex`, `PgHybridIndex` on PGlite
 * (in process) and `PgHybridIndex` on a real PostgreSQL + pgvector server
 * (`BGE_M3_RAG_PG_URL`, started by `.ci/run` / `npm run db:start`). Exact mode (`ann: false`)
 * must return exactly what the memory index returns.
 */
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BgeM3Model, M3Reranker, MemoryHybridIndex, type HybridEncodedDocument, type HybridIndex, type HybridSearchOptions, type HybridSearchResult } from '../../src/index.js';
import { PgHybridIndex, PG_SCHEMA_VERSION, type PgHybridIndexOptions } from '../../src/postgres.js';
import type { MetadataFilter } from '../../src/stores/filter.js';
import type { M3QueryEncoding, MultiVectorSource } from '../../src/stores/types.js';
import { TINY_DIR } from '../helpers.js';
import { randomCorpus, randomDense, randomSparse, rng, type RefDoc } from '../support/random-corpus.js';

const SERVER_URL = process.env.BGE_M3_RAG_PG_URL;
const REPLICA_URL = process.env.BGE_M3_RAG_PG_REPLICA_URL;
if (!SERVER_URL) {
  if (process.env.CI_REQUIRE_POSTGRES === '1') throw new Error('CI_REQUIRE_POSTGRES=1 but BGE_M3_RAG_PG_URL is not set: .ci/run must start the server (scripts/db-start.sh).');
  console.log('PostgreSQL server suite skipped: set BGE_M3_RAG_PG_URL (npm run db:start prints it) to run it; the memory and PGlite suites still run.');
}

let tableCounter = 0;
const uniqueTable = (what: string) => `t_${what}_${process.pid}_${Date.now() % 100000}_${tableCounter++}`;

type TestIndex = HybridIndex & MultiVectorSource & { close?(): Promise<void> };

interface Backend {
  name: string;
  /** A fresh, empty index for precomputed encodings of width `dim` (memory takes `multiVectors` of `extra` only). */
  encoded(dim: number, extra?: Partial<PgHybridIndexOptions>): Promise<TestIndex>;
  /** A fresh, empty index using the fixture model (memory takes `multiVectors` of `extra` only). */
  withModel(model: BgeM3Model, extra?: Partial<PgHybridIndexOptions>): Promise<TestIndex>;
  /**
   * The same index again, as another process would open it (the settings it recorded, no options):
   * memory saved and loaded, Postgres closed and opened on its table. The old handle is closed.
   */
  reopen(index: TestIndex, model: BgeM3Model | null, dim?: number): Promise<TestIndex>;
  /** Postgres: SQL on the index's database, and an index's table. */
  sql?(text: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  tableOf?(index: TestIndex): string;
  /** Postgres: opens an index on `table` of this backend's database (exact mode unless `options` say otherwise). */
  openTable?(table: string, options: PgHybridIndexOptions): Promise<PgHybridIndex>;
}

let pglite: PGlite;
let serverPool: pg.Pool | undefined;

beforeAll(async () => {
  pglite = new PGlite({ extensions: { vector } });
  await pglite.waitReady;
  if (SERVER_URL) {
    serverPool = new pg.Pool({ connectionString: SERVER_URL, max: 6 });
    await serverPool.query('SELECT 1');
  }
});
const tempDirs: string[] = [];
afterAll(async () => {
  await pglite?.close();
  await serverPool?.end();
  for (const dir of tempDirs) await rm(dir, { recursive: true, force: true });
});

const pgBackend = (name: string, client: () => unknown, sql: (text: string, params?: unknown[]) => Promise<Record<string, unknown>[]>): Backend => {
  const tables = new WeakMap<object, string>();
  const opened = async (table: string, options: PgHybridIndexOptions) => {
    const index = await PgHybridIndex.open({ client: client(), table, ann: false, ...options });
    tables.set(index, table);
    return index;
  };
  return {
    name,
    encoded: (dim, extra = {}) => opened(uniqueTable('enc'), { model: null, dim, ...extra }),
    withModel: (model, extra = {}) => opened(uniqueTable('model'), { model, ...extra }),
    reopen: async (index, model, dim) => {
      const table = tables.get(index)!;
      await index.close!();
      return opened(table, model ? { model } : { model: null, dim });
    },
    sql,
    tableOf: (index) => tables.get(index)!,
    openTable: opened,
  };
};
const memoryBackend: Backend = {
  name: 'memory',
  encoded: async (dim, extra = {}) => new MemoryHybridIndex({ dim, multiVectors: extra.multiVectors }),
  withModel: async (model, extra = {}) => new MemoryHybridIndex({ model, multiVectors: extra.multiVectors }),
  reopen: async (index, model, dim) => {
    const dir = await mkdtemp(join(tmpdir(), 'bge-m3-rag-backends-'));
    tempDirs.push(dir);
    await (index as MemoryHybridIndex).save(dir);
    await index.close!();
    return MemoryHybridIndex.load(dir, model ?? undefined, model ? {} : { dim });
  },
};
const BACKENDS: Backend[] = [
  memoryBackend,
  pgBackend('PGlite', () => pglite, async (text, params) => (await pglite.query<Record<string, unknown>>(text, params)).rows),
  ...(SERVER_URL ? [pgBackend('PostgreSQL server', () => serverPool!, async (text, params) => (await serverPool!.query(text, params)).rows)] : []),
];

function randomOptions(rand: () => number, n: number): HybridSearchOptions {
  const fusion = rand() < 0.5 ? 'weighted' : 'rrf';
  const pick = () => (rand() < 0.15 ? 0 : Math.round(rand() * 2000) / 1000);
  let weights = { dense: pick(), sparse: pick() };
  if (weights.dense + weights.sparse === 0) weights = { dense: 1, sparse: 0.3 };
  const filters: (MetadataFilter | undefined)[] = [undefined, undefined, { group: 1 }, { n: { $lt: n / 2 } }, { $or: [{ group: 0 }, { n: { $gte: n - 20 } }] }, { group: { $in: [0, 2] } }];
  return {
    k: 1 + Math.floor(rand() * 12),
    candidates: 1 + Math.floor(rand() * Math.max(1, n / 3)),
    fusion,
    weights,
    rrfK: [60, 0, 1, 10.5][Math.floor(rand() * 4)]!,
    filter: filters[Math.floor(rand() * filters.length)] as HybridSearchOptions['filter'],
  };
}

const toEncoded = (docs: RefDoc[]): HybridEncodedDocument[] => docs.map((d) => ({ id: d.id, text: d.text, metadata: d.metadata, dense: d.dense, sparse: d.sparse }));

describe.each(BACKENDS)('$name backend', (backend) => {
  const opened: { close?(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const i of opened) await i.close?.();
  });
  const open = async (dim: number, extra?: Partial<PgHybridIndexOptions>) => {
    const index = await backend.encoded(dim, extra);
    opened.push(index);
    return index;
  };

  it('exact search equals the memory index on random corpora, options and declarative filters', async () => {
    const rand = rng(42);
    const docs = randomCorpus(rand, 240, 16, 400, 25);
    const index = await open(16);
    await index.addEncoded(toEncoded(docs));
    const reference = new MemoryHybridIndex({ dim: 16 });
    reference.addEncoded(toEncoded(docs));
    expect(await index.count()).toBe(240);
    for (let q = 0; q < 30; q++) {
      const query = { dense: randomDense(rand, 16), sparse: randomSparse(rand, 400, 12) };
      const options = randomOptions(rand, docs.length);
      const want = await reference.searchEncoded(query, options);
      const got = await index.searchEncoded(query, options);
      expect(got, `query ${q} ${JSON.stringify(options)}`).toEqual(want);
    }
  });

  it('upserts by id (the new version goes last in insertion order) and deletes by id', async () => {
    const index = await open(4);
    const same = { dense: [1, 0, 0, 0], sparse: { '7': 1 } };
    await index.addEncoded([
      { id: 'a', text: 'first a', ...same },
      { id: 'b', text: 'b', ...same },
    ]);
    await index.addEncoded([{ id: 'a', text: 'second a', metadata: { v: 2 }, ...same }]);
    expect(await index.count()).toBe(2);
    const hits = await index.searchEncoded({ dense: [1, 0, 0, 0], sparse: { '7': 1 } }, { k: 5 });
    expect(hits.map((h) => [h.id, h.text])).toEqual([
      ['b', 'b'],
      ['a', 'second a'],
    ]);
    expect(hits[1]!.metadata).toEqual({ v: 2 });
    expect(await index.delete(['a', 'missing', 'a'])).toBe(1);
    expect(await index.count()).toBe(1);
  });

  it('refuses bad input with a BgeM3Error and stores nothing', async () => {
    const index = await open(4);
    await index.addEncoded([{ id: 'keep', text: 'x', dense: [1, 0, 0, 0], sparse: { '1': 1 } }]);
    const good = (id: string) => ({ id, text: id, dense: [0, 1, 0, 0], sparse: { '2': 0.5 } });
    const bad: [string, HybridEncodedDocument[]][] = [
      ['a dense vector of another width', [good('n1'), { ...good('n2'), dense: [1, 2, 3] }]],
      ['a negative weight', [good('n1'), { ...good('n2'), sparse: { '3': -1 } }]],
      ['a non-finite dense value', [good('n1'), { ...good('n2'), dense: [0, NaN, 0, 0] }]],
      ['a duplicate id in one call', [good('n1'), good('n1')]],
    ];
    for (const [what, docs] of bad) {
      await expect(Promise.resolve().then(() => index.addEncoded(docs)), what).rejects.toMatchObject({ name: 'BgeM3Error', code: 'INVALID_ARGUMENT' });
      expect(await index.count(), what).toBe(1);
    }
    await expect(index.searchEncoded({ dense: [1, 0, 0, 0], sparse: {} }, { filter: { n: { $regex: 'x' } } as never })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/\$regex/) });
  });

  it('stores hostile ids, metadata keys and texts verbatim', async () => {
    const index = await open(4);
    const hostile = [
      { id: "'); DROP TABLE bge_m3_documents; --", text: "Robert'); DROP TABLE students;-- \\ $1 $$ %s", metadata: { "key'\"; --": 'v', 'a.b': { $gt: 'not an operator' }, emoji: '👋🏽', arr: [1, 'two', null] } },
      { id: 'ünïcödé 検索 😀', text: 'مرحبا\n\t\r', metadata: { nested: { deep: { deeper: [true, false] } } } },
    ];
    await index.addEncoded(hostile.map((d, i) => ({ ...d, dense: [1, i, 0, 0], sparse: { [String(i)]: 1 } })));
    const hits = await index.searchEncoded({ dense: [1, 0.5, 0, 0], sparse: { '0': 1, '1': 1 } }, { k: 5 });
    expect(hits.map((h) => ({ id: h.id, text: h.text, metadata: h.metadata })).sort((a, b) => a.id.localeCompare(b.id))).toEqual(hostile.sort((a, b) => a.id.localeCompare(b.id)));
    expect(await index.count()).toBe(2);
  });

  it('with the fixture model: add, search and rerank as the memory index does', async () => {
    const model = await BgeM3Model.load(TINY_DIR);
    try {
      const index = await backend.withModel(model);
      opened.push(index);
      const reference = new MemoryHybridIndex({ model });
      const docs = [
        { id: 'fuji', text: "Mount Fuji is Japan's highest mountain.", metadata: { lang: 'en' } },
        { id: 'fuji-ja', text: '富士山は日本で一番高い山です。', metadata: { lang: 'ja' } },
        { id: 'taj', text: 'Das Taj Mahal wurde von Shah Jahan erbaut.', metadata: { lang: 'de' } },
        { id: 'paris', text: 'Paris est la capitale de la France.', metadata: { lang: 'fr' } },
      ];
      await index.add(docs);
      await reference.add(docs);
      for (const [query, options] of [
        ['日本で一番高い山は？', { k: 3 }],
        ['Wer hat das Taj Mahal gebaut?', { k: 2, rerank: { topN: 4 } }],
        ['capital', { k: 4, filter: { lang: { $ne: 'ja' } }, fusion: 'rrf' }],
      ] as [string, HybridSearchOptions][]) {
        expect(await index.search(query, options), query).toEqual(await reference.search(query, options));
      }
    } finally {
      await model.dispose();
    }
  });
});

// --- stored multi-vectors (issue 14) ----------------------------------------------------------

const MV_DOCS = [
  { id: 'fuji', text: "Mount Fuji is Japan's highest mountain, an active volcano on Honshu.", metadata: { lang: 'en' } },
  { id: 'fuji-ja', text: '富士山は日本で一番高い山です。', metadata: { lang: 'ja' } },
  { id: 'taj', text: 'Das Taj Mahal wurde von Shah Jahan für seine Frau erbaut.', metadata: { lang: 'de' } },
  { id: 'paris', text: 'Paris est la capitale de la France.', metadata: { lang: 'fr' } },
  { id: 'everest', text: 'Mount Everest is the highest mountain above sea level.', metadata: { lang: 'en' } },
  { id: 'rome', text: 'Rome is the capital of Italy and was the centre of the Roman Empire.', metadata: { lang: 'en' } },
  { id: 'tokyo', text: 'Tokyo is the capital of Japan and its largest city.', metadata: { lang: 'en' } },
  { id: 'berlin', text: 'Berlin ist die Hauptstadt Deutschlands.', metadata: { lang: 'de' } },
];
const MV_QUERIES = ['highest mountain in Japan', 'Wer hat das Taj Mahal gebaut?', 'capital city', '日本の首都', 'volcano'];
/** Reranked over every document, so the stored and the re-encoded search rank the same set. */
const MV_ALL: HybridSearchOptions = { k: MV_DOCS.length, rerank: { topN: MV_DOCS.length } };
/** The largest |stored − re-encoded| difference of a score the reranker may show, by storage format (m3-reranker.ts). */
const MV_TOLERANCE = { fp16: 1e-3, int8: 5e-3 } as const;

/** Runs `work` with `model.encode` spied on: the number of texts of each encode call, in order. */
async function countEncodes<T>(model: BgeM3Model, work: () => Promise<T>): Promise<{ result: T; calls: number[] }> {
  const spy = vi.spyOn(model, 'encode');
  try {
    const result = await work();
    return { result, calls: spy.mock.calls.map(([texts]) => texts.length) };
  } finally {
    spy.mockRestore();
  }
}

/** A query's three outputs, as `scoreStored` takes them. */
async function m3Query(model: BgeM3Model, text: string): Promise<M3QueryEncoding> {
  const e = await model.encode([text], { returnDense: true, returnSparse: true, returnColbertVecs: true, maxLength: 512 });
  return { dense: e.denseVecs![0]!, sparse: e.lexicalWeights![0]!, colbert: e.colbertVecs![0]! };
}

/** `got` and `want` hold the same results in the same order, every score within `tolerance`. */
function expectSameResults(got: HybridSearchResult[], want: HybridSearchResult[], tolerance: number, what: string): void {
  expect(got.map((r) => r.id), what).toEqual(want.map((r) => r.id));
  got.forEach((g, i) => {
    const w = want[i]!;
    expect({ text: g.text, metadata: g.metadata, colbertSource: g.colbertSource }, `${what}: ${g.id}`).toEqual({ text: w.text, metadata: w.metadata, colbertSource: w.colbertSource });
    for (const key of ['score', 'dense', 'sparse', 'colbert', 'fusedScore'] as const) {
      expect(Math.abs(g[key]! - w[key]!), `${what}: ${g.id}.${key} ${g[key]} vs ${w[key]}`).toBeLessThanOrEqual(tolerance);
    }
  });
}

/** `rows` ColBERT rows of width `dim`, deterministic in `seed`. */
const colbertRows = (seed: number, rows = 3, dim = 4) => Array.from({ length: rows }, (_, r) => Array.from({ length: dim }, (_, i) => Math.sin(seed * 7.3 + r * 3.1 + i)));

describe.each(BACKENDS)('$name backend: stored multi-vectors', (backend) => {
  let model: BgeM3Model;
  const opened: { close?(): Promise<void> }[] = [];
  const track = <T extends { close?(): Promise<void> }>(index: T): T => {
    opened.push(index);
    return index;
  };
  beforeAll(async () => {
    model = await BgeM3Model.load(TINY_DIR);
  });
  afterAll(async () => {
    for (const i of opened) await i.close?.();
    await model?.dispose();
  });

  it.each(['fp16', 'int8'] as const)("reranks from stored %s vectors: one query encode, the scores of re-encoding, the memory index's results", async (format) => {
    const stored = track(await backend.withModel(model, { multiVectors: format }));
    const encoded = track(await backend.withModel(model, { multiVectors: false }));
    const reference = track(new MemoryHybridIndex({ model, multiVectors: format }));
    await stored.add(MV_DOCS);
    await encoded.add(MV_DOCS);
    await reference.add(MV_DOCS);
    let maxScore = 0;
    let maxColbert = 0;
    for (const [q, query] of MV_QUERIES.entries()) {
      const { result: got, calls } = await countEncodes(model, () => stored.search(query, MV_ALL));
      // The query, once (its ColBERT rows come out of the search's own encode); no passage.
      expect(calls, `${query}: texts per encode call`).toEqual([1]);
      expect(got.map((r) => r.colbertSource)).toEqual(MV_DOCS.map(() => 'stored'));

      const { result: fallback, calls: fallbackCalls } = await countEncodes(model, () => encoded.search(query, MV_ALL));
      expect(fallback.map((r) => r.colbertSource)).toEqual(MV_DOCS.map(() => 'encoded'));
      // The first search encodes the query and then every passage; later ones find the passages in the reranker's cache.
      expect(fallbackCalls, `${query}: texts per encode call without stored vectors`).toEqual(q === 0 ? [1, MV_DOCS.length] : [1]);

      const byId = new Map(fallback.map((r) => [r.id, r]));
      expect([...byId.keys()].sort()).toEqual(got.map((r) => r.id).sort());
      for (const r of got) {
        const f = byId.get(r.id)!;
        maxScore = Math.max(maxScore, Math.abs(r.score - f.score));
        maxColbert = Math.max(maxColbert, Math.abs(r.colbert! - f.colbert!));
        // Dense and sparse come from the stored float32 vectors: re-encoding gives them to rounding.
        expect(Math.abs(r.dense - f.dense), `${query}: ${r.id}.dense`).toBeLessThan(1e-6);
        expect(Math.abs(r.sparse - f.sparse), `${query}: ${r.id}.sparse`).toBeLessThan(1e-6);
        expect(r.fusedScore).toBe(f.fusedScore);
      }
      // Every backend reranks the same candidates from the same blobs: the memory index's results.
      expectSameResults(got, await reference.search(query, MV_ALL), 1e-12, `${backend.name} vs memory, ${query}`);
    }
    // Observed on the fixture model (dim 32, 5 queries × 8 documents; the same on every backend), score / colbert:
    // fp16 2.14e-5 / 5.36e-5, int8 2.96e-4 / 7.41e-4 (the score moves by 0.4 × the colbert difference).
    expect(maxScore, `${format}: the largest |score(stored) − score(re-encoded)| observed was ${maxScore.toExponential(2)}`).toBeLessThanOrEqual(MV_TOLERANCE[format]);
    expect(maxColbert, `${format}: the largest |colbert(stored) − colbert(re-encoded)| observed was ${maxColbert.toExponential(2)}`).toBeLessThanOrEqual(MV_TOLERANCE[format]);
    expect(maxColbert, `${format}: the stored ${format} rows are rounded`).toBeGreaterThan(0);
  });

  it('keeps reranking from the stored vectors after a reopen (memory: save + load; Postgres: close + open)', async () => {
    let index = await backend.withModel(model, { multiVectors: 'int8' });
    await index.add(MV_DOCS);
    const options: HybridSearchOptions = { k: 3, rerank: { topN: 6 } };
    const before = await index.search(MV_QUERIES[0]!, options);
    index = track(await backend.reopen(index, model));
    expect((index as TestIndex & { multiVectors: unknown }).multiVectors).toBe('int8');
    const { result: after, calls } = await countEncodes(model, () => index.search(MV_QUERIES[0]!, options));
    expect(calls).toEqual([1]);
    expect(after.every((r) => r.colbertSource === 'stored')).toBe(true);
    expect(after).toEqual(before);
    // Adds after the reopen store vectors too.
    await index.add([{ id: 'kyoto', text: 'Kyoto was the capital of Japan for over a thousand years.' }]);
    const [scores] = await index.scoreStored(await m3Query(model, 'old capital'), ['kyoto']);
    expect(scores).toMatchObject({ dense: expect.any(Number), sparse: expect.any(Number), colbert: expect.any(Number) });
  });

  it('addEncoded keeps colbert rows, refuses bad ones storing nothing, and a re-add without them drops them', async () => {
    const index = track(await backend.encoded(4, { multiVectors: 'fp16' }));
    const reference = track(new MemoryHybridIndex({ dim: 4, multiVectors: 'fp16' }));
    const docs: HybridEncodedDocument[] = [
      { id: 'a', text: 'a', dense: [1, 0, 0, 0], sparse: { '1': 0.5, '7': 0.25 }, colbert: colbertRows(1) },
      { id: 'b', text: 'b', dense: [0.6, 0.8, 0, 0], sparse: { '7': 1 }, colbert: colbertRows(2, 5) },
      { id: 'plain', text: 'no vectors', dense: [0, 0, 1, 0], sparse: { '1': 1 } },
    ];
    await index.addEncoded(docs);
    reference.addEncoded(docs);
    const query: M3QueryEncoding = { dense: [0.5, 0.5, 0.5, 0.5], sparse: { '1': 1, '7': 2 }, colbert: colbertRows(5, 2) };
    const ids = ['b', 'missing', 'a', 'plain', 'a'];
    const got = await index.scoreStored(query, ids);
    expect(got.map((s) => s === undefined)).toEqual([false, true, false, true, false]);
    expect(got).toEqual(await reference.scoreStored(query, ids));
    const { colbertScore, dot } = await import('../../src/scores.js');
    expect(got[0]!.dense).toBe(dot(query.dense, new Float32Array([0.6, 0.8, 0, 0])));
    expect(got[0]!.sparse).toBe(2 * Math.fround(1));
    expect(Math.abs(got[0]!.colbert - colbertScore(query.colbert, colbertRows(2, 5)))).toBeLessThan(1e-3);

    const good = { id: 'n1', text: 'n1', dense: [0, 1, 0, 0], sparse: { '2': 0.5 }, colbert: colbertRows(3) };
    const bad: [string, unknown][] = [
      ['a row of another width', [[1, 2, 3]]],
      ['a NaN value', [[0, NaN, 0, 0]]],
      ['an infinite value', [[0, 0, Infinity, 0]]],
      ['not an array of rows', 'rows'],
    ];
    for (const [what, colbert] of bad) {
      await expect(Promise.resolve().then(() => index.addEncoded([good, { ...good, id: 'n2', colbert: colbert as number[][] }])), what).rejects.toMatchObject({
        name: 'BgeM3Error',
        code: 'INVALID_ARGUMENT',
        message: expect.stringContaining('docs[1].colbert'),
      });
      expect(await index.count(), what).toBe(3);
      expect(await index.scoreStored(query, ['n1']), what).toEqual([undefined]);
    }

    // Upsert replaces: `a` again without rows has no stored vectors.
    await index.addEncoded([{ ...docs[0]!, colbert: undefined }]);
    expect(await index.scoreStored(query, ['a', 'b'])).toEqual([undefined, got[0]]);

    // An index without multi-vectors ignores given rows.
    const plain = track(await backend.encoded(4));
    await plain.addEncoded(docs);
    expect(await plain.scoreStored(query, ['a', 'b'])).toEqual([undefined, undefined]);
  });

  it("an M3Reranker given the index scores the index's passages from their stored vectors", async () => {
    const index = track(await backend.withModel(model, { multiVectors: 'fp16' }));
    await index.add(MV_DOCS);
    const reranker = new M3Reranker({ model, index });
    const plain = new M3Reranker({ model });
    const passages = [
      ...MV_DOCS.slice(0, 5).map((d) => ({ text: d.text, id: d.id })),
      { text: 'A passage the index does not hold.' },
      { text: 'Another one, under an id the index does not know.', id: 'not-indexed' },
    ];
    // A query no search encoded (a retriever's recent query would be recalled, not encoded).
    const query = 'Which mountain is the highest one in Japan?';
    const { result: got, calls } = await countEncodes(model, () => reranker.rerank(query, passages));
    // The query, then only the two passages without stored vectors.
    expect(calls).toEqual([1, 2]);
    const want = new Map((await plain.rerank(query, passages)).map((r) => [r.index, r]));
    for (const r of got) {
      expect(r.colbertSource, `passage ${r.index}`).toBe(r.index < 5 ? 'stored' : 'encoded');
      expect(Math.abs(r.relevanceScore - want.get(r.index)!.relevanceScore), `passage ${r.index}`).toBeLessThanOrEqual(MV_TOLERANCE.fp16);
    }
  });

  // SQL backends only (the memory backend's damaged side file is tested in multi-vectors.test.ts).
  if (backend.sql) it('a damaged stored value is CORRUPT_FILE naming the table and the document; searches without rerank never read it', async () => {
    const index = track(await backend.withModel(model, { multiVectors: 'fp16' }));
    await index.add(MV_DOCS);
    const table = backend.tableOf!(index);
    const [{ colbert: blob }] = (await backend.sql!(`SELECT colbert FROM "${table}" WHERE id = 'taj'`)) as [{ colbert: Uint8Array }];
    const wide = Uint8Array.from(blob);
    new DataView(wide.buffer).setUint32(4, 33, true);
    const damaged: [string, Uint8Array][] = [
      ['foreign bytes', new TextEncoder().encode('not a multi-vector blob')],
      ['a truncated blob', blob.subarray(0, blob.byteLength - 3)],
      ['rows of another width', wide],
      ['only part of the header', blob.subarray(0, 5)],
    ];
    for (const [what, bytes] of damaged) {
      await backend.sql!(`UPDATE "${table}" SET colbert = $1 WHERE id = 'taj'`, [bytes]);
      await expect(index.search(MV_QUERIES[1]!, MV_ALL), what).rejects.toMatchObject({
        name: 'BgeM3Error',
        code: 'CORRUPT_FILE',
        message: expect.stringMatching(new RegExp(`${table}, document "taj": the stored multi-vectors are damaged`)),
      });
      expect((await index.search(MV_QUERIES[1]!, { k: 8 })).length, what).toBe(MV_DOCS.length);
    }
  });
});

describe.each(BACKENDS.filter((b) => b.name !== 'memory'))('$name only', (backend) => {
  it('ANN mode (HNSW) recalls the exact results', async () => {
    const rand = rng(7);
    const docs = randomCorpus(rand, 400, 32, 2000, 40);
    const exact = new MemoryHybridIndex({ dim: 32 });
    exact.addEncoded(toEncoded(docs));
    const index = (await backend.encoded(32, { ann: { efSearch: 200 } })) as PgHybridIndex;
    try {
      await index.addEncoded(toEncoded(docs));
      // Fused, and dense-only (the prefix path of an unfiltered HNSW scan), against exact search.
      for (const options of [{ k: 10 }, { k: 10, weights: { dense: 1, sparse: 0 } }, { k: 5, candidates: 10, weights: { dense: 1, sparse: 0 } }]) {
        let hit = 0;
        let total = 0;
        for (let q = 0; q < 20; q++) {
          const query = { dense: randomDense(rand, 32), sparse: randomSparse(rand, 2000, 15) };
          const want = await exact.searchEncoded(query, options);
          const got = await index.searchEncoded(query, options);
          const byId = new Map(got.map((r) => [r.id, r]));
          for (const w of want) {
            const g = byId.get(w.id);
            if (!g) continue;
            hit++;
            // Whatever the ANN path returns carries the exact scores.
            expect(g.dense).toBe(w.dense);
            expect(g.sparse).toBe(w.sparse);
          }
          total += want.length;
          expect(got.length).toBe(want.length);
        }
        expect(hit / total).toBeGreaterThanOrEqual(0.9);
      }
    } finally {
      await index.close();
    }
  });

  it('ANN mode on an empty table: every search path returns nothing (no negative OFFSET)', async () => {
    const index = (await backend.encoded(8, { ann: {} })) as PgHybridIndex;
    try {
      const query = { dense: randomDense(rng(5), 8), sparse: { 3: 0.5 } };
      for (const options of [{ k: 10 }, { k: 10, weights: { dense: 1, sparse: 0 } }, { k: 3, weights: { dense: 1, sparse: 0 }, candidates: 3 }, { k: 10, fusion: 'rrf' as const }, { k: 10, filter: { group: 1 } }]) {
        expect(await index.searchEncoded(query, options), JSON.stringify(options)).toEqual([]);
      }
    } finally {
      await index.close();
    }
  });

  it('refuses function filters, unsafe table names and a mismatched model', async () => {
    const index = (await backend.encoded(4)) as PgHybridIndex;
    try {
      await expect(index.searchEncoded({ dense: [1, 0, 0, 0], sparse: {} }, { filter: () => true })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/only an in-memory index/) });
    } finally {
      await index.close();
    }
    await expect(PgHybridIndex.open({ client: pglite, table: 'docs; DROP TABLE x', dim: 4 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/not a safe table name/) });
    const model = await BgeM3Model.load(TINY_DIR);
    try {
      const table = uniqueTable('dim');
      const small = await PgHybridIndex.open({ client: pglite, table, model: null, dim: 8 });
      await small.addEncoded([{ id: 'x', text: 'x', dense: new Array(8).fill(0.1), sparse: {} }]);
      await small.close();
      await expect(PgHybridIndex.open({ client: pglite, table, model })).rejects.toMatchObject({ code: 'INCOMPATIBLE_INDEX', message: expect.stringMatching(/8-dimensional.*32/) });
    } finally {
      await model.dispose();
    }
  });

  it('migrates a version-1 table to stored multi-vectors and keeps one format per table', async () => {
    const model = await BgeM3Model.load(TINY_DIR);
    const sql = backend.sql!;
    const meta = async (table: string) => Object.fromEntries((await sql(`SELECT key, value FROM "${table}_meta"`)).map((r) => [r.key, r.value]));
    const handles: PgHybridIndex[] = [];
    const open = async (table: string, options: PgHybridIndexOptions) => {
      const index = await backend.openTable!(table, { model, ...options });
      handles.push(index);
      return index;
    };
    try {
      const first = (await backend.withModel(model)) as PgHybridIndex;
      handles.push(first);
      expect(first.multiVectors).toBe(false);
      const table = backend.tableOf!(first);
      expect(await meta(table)).toMatchObject({ schema_version: PG_SCHEMA_VERSION, multi_vectors: false });
      await first.add(MV_DOCS.slice(0, 4));
      await first.close();
      // What a version-1 bge-m3-rag left: no colbert column, no multi_vectors key.
      const makeVersion1 = async () => {
        await sql(`ALTER TABLE "${table}" DROP COLUMN colbert`);
        await sql(`UPDATE "${table}_meta" SET value = '1'::jsonb WHERE key = 'schema_version'`);
        await sql(`DELETE FROM "${table}_meta" WHERE key = 'multi_vectors'`);
      };
      await makeVersion1();

      // Opened without the option: migrated, still storing nothing.
      const migrated = await open(table, {});
      expect(migrated.multiVectors).toBe(false);
      expect(await meta(table)).toMatchObject({ schema_version: PG_SCHEMA_VERSION, multi_vectors: false });
      expect((await migrated.search(MV_QUERIES[2]!, MV_ALL)).map((h) => h.colbertSource)).toEqual(MV_DOCS.slice(0, 4).map(() => 'encoded'));
      await migrated.close();

      // Opened with a format: migrated and upgraded in one open.
      await makeVersion1();
      const upgraded = await open(table, { multiVectors: 'int8' });
      expect(upgraded.multiVectors).toBe('int8');
      expect(await meta(table)).toMatchObject({ schema_version: 2, multi_vectors: 'int8' });
      const [column] = await sql(`SELECT data_type FROM information_schema.columns WHERE table_name = $1 AND column_name = 'colbert'`, [table]);
      expect(column).toEqual({ data_type: 'bytea' });
      await upgraded.add(MV_DOCS.slice(4));
      const hits = await upgraded.search(MV_QUERIES[2]!, MV_ALL);
      const sources = Object.fromEntries(hits.map((h) => [h.id, h.colbertSource]));
      // Rows added before the upgrade have no vectors: they are encoded.
      expect(sources).toEqual(Object.fromEntries(MV_DOCS.map((d, i) => [d.id, i < 4 ? 'encoded' : 'stored'])));
      await upgraded.close();

      await expect(open(table, { multiVectors: 'fp16' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/stores multi-vectors as "int8".*multiVectors: "fp16"/) });
      const again = await open(table, {});
      expect(again.multiVectors).toBe('int8');
      await again.close();
      // false: this connection adds without vectors; the table keeps its setting and its stored vectors.
      const without = await open(table, { multiVectors: false });
      expect(without.multiVectors).toBe(false);
      await without.add([{ id: 'everest', text: MV_DOCS[4]!.text }]);
      expect(await without.scoreStored(await m3Query(model, 'x'), ['everest', 'rome'])).toMatchObject([undefined, { colbert: expect.any(Number) }]);
      await without.close();
      expect((await meta(table)).multi_vectors).toBe('int8');

      await expect(open(table, { multiVectors: 'fp32' as never })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/multiVectors must be false, 'fp16' or 'int8'/) });
      await sql(`UPDATE "${table}_meta" SET value = '99'::jsonb WHERE key = 'schema_version'`);
      await expect(open(table, {})).rejects.toMatchObject({ code: 'INCOMPATIBLE_INDEX', message: expect.stringMatching(/schema version 99/) });
      await sql(`UPDATE "${table}_meta" SET value = '"bf16"'::jsonb WHERE key = 'multi_vectors'`);
      await sql(`UPDATE "${table}_meta" SET value = '2'::jsonb WHERE key = 'schema_version'`);
      await expect(open(table, {})).rejects.toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/multi_vectors is "bf16"/) });
    } finally {
      for (const h of handles) await h.close();
      await model.dispose();
    }
  });
});

describe('PgHybridIndex statements (PGlite)', () => {
  it('searches never read the colbert column; a rerank reads it for its candidates only, in one statement', async () => {
    const log: { text: string; params?: unknown[] }[] = [];
    const logged = (q: { query: PGlite['query'] }) => ({
      query: (text: string, params?: unknown[]) => {
        log.push({ text, params });
        return q.query(text, params);
      },
    });
    // A PGlite look-alike that records every statement (wrapClient takes it for a PGlite).
    const client = {
      waitReady: pglite.waitReady,
      ...logged(pglite),
      transaction: <T,>(fn: (tx: { query: PGlite['query'] }) => Promise<T>) => pglite.transaction((tx) => fn(logged(tx) as never)),
      close: async () => {},
    };
    const model = await BgeM3Model.load(TINY_DIR);
    const index = await PgHybridIndex.open({ client, table: uniqueTable('log'), model, ann: false, multiVectors: 'fp16' });
    try {
      await index.add(MV_DOCS);
      const reads = () => log.filter((e) => /colbert/.test(e.text));
      for (const options of [{ k: 8 }, { k: 3, fusion: 'rrf' }, { k: 2, weights: { dense: 1, sparse: 0 } }] as HybridSearchOptions[]) {
        log.length = 0;
        await index.search(MV_QUERIES[0]!, options);
        expect(log.some((e) => /dense_exact/.test(e.text)), 'the statements were recorded').toBe(true);
        expect(reads(), JSON.stringify(options)).toEqual([]);
      }
      log.length = 0;
      const hits = await index.search(MV_QUERIES[0]!, { k: 2, rerank: { topN: 3 } });
      expect(hits.map((h) => h.colbertSource)).toEqual(['stored', 'stored']);
      expect(reads()).toHaveLength(1);
      expect(reads()[0]!.text).toMatch(/^SELECT id, dense_exact, sparsevec_send\(sparse\) AS sparse, colbert FROM .* WHERE id = ANY\(\$1::text\[\]\) AND colbert IS NOT NULL$/);
      expect((reads()[0]!.params![0] as string[]).length).toBe(3);
    } finally {
      await index.close();
      await model.dispose();
    }
  });
});

describe.runIf(SERVER_URL)('PostgreSQL server', () => {
  it('serves searches from a streaming read replica and refuses writes there with a clear error', async () => {
    expect(REPLICA_URL, 'BGE_M3_RAG_PG_REPLICA_URL').toBeTruthy();
    const table = uniqueTable('replica');
    const primary = await PgHybridIndex.open({ connectionString: SERVER_URL!, table, model: null, dim: 4 });
    try {
      await primary.addEncoded([{ id: 'r1', text: 'replicated', dense: [1, 0, 0, 0], sparse: { '3': 1 } }]);
      let replica: PgHybridIndex | undefined;
      for (let i = 0; i < 100 && !replica; i++) {
        replica = await PgHybridIndex.open({ connectionString: REPLICA_URL!, table, model: null, dim: 4 }).catch(async () => {
          await new Promise((r) => setTimeout(r, 100));
          return undefined;
        });
      }
      expect(replica?.readOnly).toBe(true);
      try {
        let hits: { id: string }[] = [];
        for (let i = 0; i < 100 && hits.length === 0; i++) {
          hits = await replica!.searchEncoded({ dense: [1, 0, 0, 0], sparse: { '3': 1 } }, { k: 3 });
          if (hits.length === 0) await new Promise((r) => setTimeout(r, 100));
        }
        expect(hits.map((h) => h.id)).toEqual(['r1']);
        await expect(replica!.addEncoded([{ id: 'r2', text: 'x', dense: [0, 1, 0, 0], sparse: {} }])).rejects.toMatchObject({ name: 'BgeM3Error', message: expect.stringMatching(/read-only standby/) });
      } finally {
        await replica?.close();
      }
    } finally {
      await primary.close();
    }
  });

  it('a read replica reranks from the vectors stored through the primary', async () => {
    const model = await BgeM3Model.load(TINY_DIR);
    const table = uniqueTable('replica_mv');
    const primary = await PgHybridIndex.open({ connectionString: SERVER_URL!, table, model, ann: false, multiVectors: 'fp16' });
    let replica: PgHybridIndex | undefined;
    try {
      await primary.add(MV_DOCS);
      for (let i = 0; i < 100 && !replica; i++) {
        replica = await PgHybridIndex.open({ connectionString: REPLICA_URL!, table, model, ann: false }).catch(async () => {
          await new Promise((r) => setTimeout(r, 100));
          return undefined;
        });
      }
      expect(replica?.readOnly).toBe(true);
      expect(replica!.multiVectors).toBe('fp16');
      for (let i = 0; i < 100 && (await replica!.count()) < MV_DOCS.length; i++) await new Promise((r) => setTimeout(r, 100));
      const query = MV_QUERIES[3]!;
      const { result: got, calls } = await countEncodes(model, () => replica!.search(query, MV_ALL));
      expect(calls).toEqual([1]);
      expect(got.map((r) => r.colbertSource)).toEqual(MV_DOCS.map(() => 'stored'));
      expect(got).toEqual(await primary.search(query, MV_ALL));
    } finally {
      await replica?.close();
      await primary.close();
      await model.dispose();
    }
  });

  it('processes opening a version-1 table at once migrate it once, and only one format can be recorded', async () => {
    const table = uniqueTable('migrate_race');
    const first = await PgHybridIndex.open({ connectionString: SERVER_URL!, table, model: null, dim: 4, ann: false });
    await first.addEncoded([{ id: 'old', text: 'old', dense: [1, 0, 0, 0], sparse: { '1': 1 } }]);
    await first.close();
    await serverPool!.query(`ALTER TABLE "${table}" DROP COLUMN colbert`);
    await serverPool!.query(`UPDATE "${table}_meta" SET value = '1'::jsonb WHERE key = 'schema_version'`);
    await serverPool!.query(`DELETE FROM "${table}_meta" WHERE key = 'multi_vectors'`);
    const formats = [undefined, 'fp16', 'int8', 'fp16', undefined, 'int8'] as const;
    const opened = await Promise.allSettled(formats.map((multiVectors) => PgHybridIndex.open({ connectionString: SERVER_URL!, table, model: null, dim: 4, ann: false, multiVectors })));
    try {
      const [{ value }] = (await serverPool!.query(`SELECT value FROM "${table}_meta" WHERE key = 'multi_vectors'`)).rows as [{ value: string }];
      expect(['fp16', 'int8']).toContain(value);
      // Every opener of the recorded format (or of none) succeeded; every opener of the other one was refused.
      opened.forEach((o, i) => {
        if (formats[i] === undefined || formats[i] === value) expect(o.status, `opener ${i} (${formats[i]})`).toBe('fulfilled');
        else expect(o, `opener ${i} (${formats[i]})`).toMatchObject({ status: 'rejected', reason: { code: 'INVALID_ARGUMENT' } });
      });
      const [{ v }] = (await serverPool!.query(`SELECT value AS v FROM "${table}_meta" WHERE key = 'schema_version'`)).rows as [{ v: number }];
      expect(v).toBe(PG_SCHEMA_VERSION);
    } finally {
      for (const o of opened) if (o.status === 'fulfilled') await o.value.close();
    }
  });

  it('keeps two processes adding and searching at once consistent', async () => {
    const table = uniqueTable('concurrent');
    const a = await PgHybridIndex.open({ connectionString: SERVER_URL!, table, model: null, dim: 8 });
    const b = await PgHybridIndex.open({ connectionString: SERVER_URL!, table, model: null, dim: 8 });
    try {
      const rand = rng(3);
      const batches = Array.from({ length: 6 }, (_, i) => randomCorpus(rand, 50, 8, 300, 10, `b${i}-`));
      const sizes = new Set<number>();
      await Promise.all([
        ...batches.map((docs, i) => (i % 2 ? a : b).addEncoded(toEncoded(docs))),
        (async () => {
          for (let i = 0; i < 10; i++) {
            const hits = await b.searchEncoded({ dense: randomDense(rand, 8), sparse: {} }, { k: 400, candidates: 400 });
            sizes.add(hits.length);
          }
        })(),
      ]);
      // Every search saw whole batches only.
      for (const s of sizes) expect(s % 50).toBe(0);
      expect(await a.count()).toBe(300);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a server connection that dies mid-add leaves nothing half-written', async () => {
    const table = uniqueTable('killed');
    const pool = new pg.Pool({ connectionString: SERVER_URL!, max: 1 });
    pool.on('error', () => {}); // the terminated connection, once idle
    const index = await PgHybridIndex.open({ client: pool, table, model: null, dim: 64, insertBatchSize: 10 });
    try {
      const rand = rng(9);
      const docs = randomCorpus(rand, 3000, 64, 1000, 30, 'k');
      const [{ pid }] = (await pool.query('SELECT pg_backend_pid() AS pid')).rows as [{ pid: number }];
      const adding = index.addEncoded(toEncoded(docs));
      await new Promise((r) => setTimeout(r, 150));
      await serverPool!.query('SELECT pg_terminate_backend($1)', [pid]);
      await expect(adding).rejects.toMatchObject({ name: 'BgeM3Error', code: 'DATABASE_ERROR' });
      const [{ n }] = (await serverPool!.query(`SELECT count(*)::int AS n FROM "${table}"`)).rows as [{ n: number }];
      expect(n).toBe(0);
    } finally {
      await index.close();
      await pool.end();
    }
  });

  it('names the SQL to run when the vector extension is missing and may not be created', async () => {
    const db = `bge_m3_noext_${process.pid}`;
    await serverPool!.query(`DROP DATABASE IF EXISTS ${db}`);
    await serverPool!.query(`CREATE DATABASE ${db}`);
    try {
      const url = new URL(SERVER_URL!);
      url.pathname = `/${db}`;
      await expect(PgHybridIndex.open({ connectionString: url.toString(), dim: 4, model: null, createExtension: false })).rejects.toMatchObject({
        code: 'MISSING_FILE',
        message: expect.stringMatching(/CREATE EXTENSION IF NOT EXISTS vector/),
      });
    } finally {
      await serverPool!.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    }
  });
});
