/**
 * The shared backend suite: the same checks against `MemoryHybridIndex`, `PgHybridIndex` on PGlite
 * (in process) and `PgHybridIndex` on a real PostgreSQL + pgvector server
 * (`BGE_M3_RAG_PG_URL`, started by `.ci/run` / `npm run db:start`). Exact mode (`ann: false`)
 * must return exactly what the memory index returns.
 */
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3Model, MemoryHybridIndex, type HybridEncodedDocument, type HybridIndex, type HybridSearchOptions } from '../../src/index.js';
import { PgHybridIndex, type PgHybridIndexOptions } from '../../src/postgres.js';
import type { MetadataFilter } from '../../src/stores/filter.js';
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

interface Backend {
  name: string;
  /** A fresh, empty index for precomputed encodings of width `dim`. */
  encoded(dim: number, extra?: Partial<PgHybridIndexOptions>): Promise<HybridIndex & { close?(): Promise<void> }>;
  /** A fresh, empty index using the fixture model. */
  withModel(model: BgeM3Model, extra?: Partial<PgHybridIndexOptions>): Promise<HybridIndex & { close?(): Promise<void> }>;
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
afterAll(async () => {
  await pglite?.close();
  await serverPool?.end();
});

const pgBackend = (name: string, client: () => unknown): Backend => ({
  name,
  encoded: (dim, extra = {}) => PgHybridIndex.open({ client: client(), table: uniqueTable('enc'), model: null, dim, ann: false, ...extra }),
  withModel: (model, extra = {}) => PgHybridIndex.open({ client: client(), table: uniqueTable('model'), model, ann: false, ...extra }),
});
const BACKENDS: Backend[] = [
  { name: 'memory', encoded: async (dim) => new MemoryHybridIndex({ dim }), withModel: async (model) => new MemoryHybridIndex({ model }) },
  pgBackend('PGlite', () => pglite),
  ...(SERVER_URL ? [pgBackend('PostgreSQL server', () => serverPool!)] : []),
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
