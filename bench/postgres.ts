/**
 * PostgreSQL benchmark: `PgHybridIndex` on a PostgreSQL + pgvector server and on PGlite, beside
 * `MemoryHybridIndex` (the exact reference) and LangChain's `PGVectorStore` (dense only, same
 * server, its own HNSW index), on the same synthetic BGE-M3-shaped encodings.
 *
 *   node --expose-gc --import tsx bench/postgres.ts                 # 100k documents, ~15-20 min on 2 cores
 *   node --expose-gc --import tsx bench/postgres.ts --quick         # 10k documents, ~2-3 min
 *   node --expose-gc --import tsx bench/postgres.ts --docs 20000 --queries 100 --pglite-docs 2000
 *
 * Needs the server of `npm run db:start` (`BGE_M3_RAG_PG_URL`, read from /tmp/bge-m3-rag-db.env when
 * not set). Never part of `npm test`. Writes bench/results/postgres-latest.md and .json; drops the
 * tables it creates (also on Ctrl-C).
 *
 * Data (seeded, see `generate`): 1024-d unit dense vectors with topic structure (a shared direction,
 * one of N/100 topic directions, per-document noise: same-topic cosine ~0.67, other topics ~0.23,
 * roughly what BGE-M3 gives related and unrelated passages); 30-300 lexical weights in (0, 0.4] per
 * document over 250,002 token ids, Zipf(1)-distributed (id 0 most frequent) plus 15% topical ids;
 * 2% long documents with 1,000-2,500 weights (past pgvector's 1,000-non-zero HNSW limit: only their
 * top 1,000 weights are in the sparse HNSW index). Queries are perturbed copies of random documents
 * (cosine ~0.82 with their source) with 5-20 weights, half of them the source's tokens.
 *
 * Measured: insert docs/s (addEncoded in batches of 1,000): bulk load into a table without HNSW
 * indexes (`ann: false`), then HNSW creation by re-opening it with `ann: true` (CREATE INDEX on the
 * loaded table; maintenance_work_mem = 1GB on that connection), and inserts into the indexed table;
 * fused top-10 latency and recall@10 against the exact fusion (MemoryHybridIndex on the same
 * documents); dense-only latency and recall against PGVectorStore's similaritySearchVectorWithScore,
 * alternating the two systems query by query; table + index bytes per document.
 */
import { readFileSync, mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { PGVectorStore } from '@langchain/community/vectorstores/pgvector';
import { Document } from '@langchain/core/documents';
import { Embeddings } from '@langchain/core/embeddings';
import pg from 'pg';
import { MemoryHybridIndex, type HybridEncodedDocument, type HybridSearchOptions, type HybridSearchResult } from '../src/index.js';
import { PgHybridIndex, type PgHybridIndexOptions } from '../src/postgres.js';
import { mulberry32 } from './lib/prng.js';

const { values: args } = parseArgs({
  options: {
    docs: { type: 'string' },
    queries: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'pglite-docs': { type: 'string' },
    'pglite-queries': { type: 'string' },
    'exact-sparse-queries': { type: 'string' },
    'indexed-inserts': { type: 'string' },
    'skip-pglite': { type: 'boolean', default: false },
    'skip-langchain': { type: 'boolean', default: false },
    seed: { type: 'string', default: '42' },
    out: { type: 'string', default: join(dirname(fileURLToPath(import.meta.url)), 'results') },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(
    'Usage: node --expose-gc --import tsx bench/postgres.ts [--docs 100000] [--queries 200] [--quick] [--pglite-docs 10000] [--pglite-queries 100]\n' +
      '         [--exact-sparse-queries 30] [--indexed-inserts 300] [--skip-pglite] [--skip-langchain] [--seed 42] [--out bench/results]',
  );
  process.exit(0);
}
const QUICK = args.quick;
const N = Number(args.docs ?? (QUICK ? 10_000 : 100_000));
const Q = Number(args.queries ?? (QUICK ? 100 : 200));
const N_PGLITE = Math.min(N, Number(args['pglite-docs'] ?? (QUICK ? 2_000 : 5_000)));
const Q_PGLITE = Math.min(Q, Number(args['pglite-queries'] ?? (QUICK ? 50 : 100)));
const Q_EXACT_SPARSE = Math.min(Q, Number(args['exact-sparse-queries'] ?? (QUICK ? 50 : 30)));
const N_INDEXED = Number(args['indexed-inserts'] ?? (QUICK ? 200 : 300));
const SEED = Number(args.seed);
const DIM = 1024;
const VOCAB = 250_002;
const K = 10;
const BATCH = 1000;
const WARMUP = 5;
const EXACT_CHECKS = QUICK ? 5 : 3;
/** Fresh queries for the equal-effort dense comparison (PgHybridIndex at PGVectorStore's candidates and ef_search). */
const Q_EQUAL = args['skip-langchain'] ? 0 : Math.min(Q, 100);
const BUILD_MEM = '1GB';

const log = (s: string) => console.error(`[postgres bench ${((performance.now() - T0) / 1000).toFixed(0).padStart(4)} s] ${s}`);
const T0 = performance.now();

// --- synthetic data (mulberry32 and the Zipf sampler as in bench/hybrid.ts) -----------------

interface Sparse {
  indices: Int32Array;
  values: Float32Array;
}

/** Zipf(1) sampler over token ids 0..vocab-1 (id 0 most frequent), by inverse CDF. */
function zipfSampler(vocab: number, rand: () => number): () => number {
  const cdf = new Float64Array(vocab);
  let total = 0;
  for (let r = 0; r < vocab; r++) cdf[r] = total += 1 / (r + 1);
  return () => {
    const u = rand() * total;
    let lo = 0;
    let hi = vocab - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

const gauss = (rand: () => number) => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());

function normalize(v: Float32Array): Float32Array {
  let ss = 0;
  for (let i = 0; i < v.length; i++) ss += v[i]! * v[i]!;
  const inv = 1 / Math.sqrt(ss);
  for (let i = 0; i < v.length; i++) v[i]! *= inv;
  return v;
}

function randomUnit(rand: () => number): Float32Array {
  const v = new Float32Array(DIM);
  for (let i = 0; i < DIM; i++) v[i] = gauss(rand);
  return normalize(v);
}

function sparseFrom(tokens: Set<number>, rand: () => number): Sparse {
  const indices = Int32Array.from([...tokens].sort((a, b) => a - b));
  const values = new Float32Array(indices.length);
  for (let i = 0; i < values.length; i++) values[i] = 0.4 * (1 - rand()); // (0, 0.4]
  return { indices, values };
}

const words = (s: Sparse) => Array.from(s.indices, (t) => `w${t}x`).join(' ');

/** `n` documents (the first `n - extra` are indexed everywhere; the last `extra` are inserted into the built indexes at the end) and `q` queries. */
function generate(n: number, q: number, seed: number) {
  const rand = mulberry32(seed);
  const zipf = zipfSampler(VOCAB - 2, rand);
  const topics = Math.max(10, Math.round(n / 100));
  const shared = randomUnit(rand);
  const centers = Array.from({ length: topics }, () => randomUnit(rand));
  const topicTokens = Array.from({ length: topics }, () => {
    const set = new Set<number>();
    while (set.size < 60) set.add(1000 + Math.floor(rand() * (VOCAB - 1002)));
    return Int32Array.from(set);
  });
  const dense = new Float32Array(n * DIM);
  const sparse: Sparse[] = new Array(n);
  const topicOf = new Int32Array(n);
  let long = 0;
  for (let d = 0; d < n; d++) {
    const t = Math.floor(rand() * topics);
    topicOf[d] = t;
    const c = centers[t]!;
    const row = dense.subarray(d * DIM, (d + 1) * DIM);
    for (let i = 0; i < DIM; i++) row[i] = 0.5 * shared[i]! + 0.7 * c[i]! + (0.6 * gauss(rand)) / 32;
    normalize(row);
    const isLong = rand() < 0.02;
    if (isLong) long++;
    const nnz = isLong ? 1000 + Math.floor(rand() * 1501) : 30 + Math.floor(rand() * 271);
    const tokens = new Set<number>();
    const own = topicTokens[t]!;
    const topical = Math.min(30, Math.round(nnz * 0.15));
    while (tokens.size < topical) tokens.add(own[Math.floor(rand() * own.length)]!);
    while (tokens.size < nnz) tokens.add(zipf());
    sparse[d] = sparseFrom(tokens, rand);
  }
  const queries = Array.from({ length: q }, () => {
    const src = Math.floor(rand() * n);
    const qd = new Float32Array(DIM);
    for (let i = 0; i < DIM; i++) qd[i] = dense[src * DIM + i]! + (0.7 * gauss(rand)) / 32;
    normalize(qd);
    const size = 5 + Math.floor(rand() * 16);
    const tokens = new Set<number>();
    const own = sparse[src]!.indices;
    while (tokens.size < Math.ceil(size / 2)) tokens.add(own[Math.floor(rand() * own.length)]!);
    const topical = topicTokens[topicOf[src]!]!;
    while (tokens.size < size) tokens.add(rand() < 0.5 ? topical[Math.floor(rand() * topical.length)]! : zipf());
    return { dense: qd, sparse: sparseFrom(tokens, rand) };
  });
  return { dense, sparse, queries, long };
}

type Data = ReturnType<typeof generate>;

const docAt = (data: Data, d: number): HybridEncodedDocument => ({
  id: `d${d}`,
  text: words(data.sparse[d]!),
  metadata: { d, group: d % 10 },
  dense: data.dense.subarray(d * DIM, (d + 1) * DIM),
  sparse: data.sparse[d]!,
});

// --- measurement helpers ---------------------------------------------------------------------

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

interface Latency {
  p25: number;
  p50: number;
  p75: number;
  p95: number;
  n: number;
}

function summarize(ms: number[]): Latency | undefined {
  if (ms.length === 0) return undefined;
  const s = [...ms].sort((a, b) => a - b);
  return { p25: percentile(s, 0.25), p50: percentile(s, 0.5), p75: percentile(s, 0.75), p95: percentile(s, 0.95), n: s.length };
}

const recallAt = (want: string[], got: string[]) => {
  const set = new Set(got);
  return want.length === 0 ? 1 : want.filter((id) => set.has(id)).length / want.length;
};
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

/** Runs `fn` while sampling pg_stat_activity: how long each CREATE INDEX on `table` ran (to the 0.2 s sampling step). */
async function withBuildProgress<T>(url: string, table: string, fn: () => Promise<T>): Promise<{ result: T; perIndex: Record<string, number> }> {
  const monitor = new pg.Client({ connectionString: url });
  await monitor.connect();
  const seen = new Map<string, { first: number; last: number }>();
  let stop = false;
  const poll = (async () => {
    while (!stop) {
      const { rows } = await monitor.query<{ query: string }>(`SELECT query FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() AND query ILIKE 'CREATE INDEX%' AND query LIKE '%' || $1 || '%'`, [table]);
      const now = performance.now();
      for (const r of rows) {
        const name = /CREATE INDEX (?:IF NOT EXISTS )?("?[\w]+"?)/i.exec(r.query)?.[1]?.replaceAll('"', '') ?? 'index';
        const e = seen.get(name);
        if (e) e.last = now;
        else seen.set(name, { first: now, last: now });
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  try {
    const result = await fn();
    return { result, perIndex: Object.fromEntries([...seen].map(([k, v]) => [k, (v.last - v.first) / 1000 + 0.2])) };
  } finally {
    stop = true;
    await poll.catch(() => {});
    await monitor.end();
  }
}

/** LangChain's stores embed the query themselves; this one hands back the vector it was given. */
class GivenVectorEmbeddings extends Embeddings {
  constructor() {
    super({});
  }
  async embedDocuments(): Promise<number[][]> {
    throw new Error('GivenVectorEmbeddings: documents are added with addVectors');
  }
  async embedQuery(): Promise<number[]> {
    throw new Error('GivenVectorEmbeddings: the benchmark calls similaritySearchVectorWithScore');
  }
}

function serverUrl(): string {
  if (process.env.BGE_M3_RAG_PG_URL) return process.env.BGE_M3_RAG_PG_URL;
  const file = '/tmp/bge-m3-rag-db.env';
  if (existsSync(file)) {
    const m = /BGE_M3_RAG_PG_URL=(\S+)/.exec(readFileSync(file, 'utf8'));
    if (m) return m[1]!;
  }
  console.error('bench/postgres.ts needs a PostgreSQL + pgvector server: run `npm run db:start` (or set BGE_M3_RAG_PG_URL).');
  process.exit(2);
}

// --- the run -----------------------------------------------------------------------------------

interface SystemRow {
  system: string;
  docs: number;
  insertDocsPerSec?: number;
  insertNote?: string;
  buildSeconds?: number;
  buildNote?: string;
  bytesPerDoc?: number;
  bytesNote?: string;
  fused?: Latency;
  fusedRecall?: number;
  dense?: Latency;
  denseRecall?: number;
}

async function relationBytes(db: { query(sql: string, params?: unknown[]): Promise<{ rows: Record<string, unknown>[] }> }, table: string) {
  const { rows } = await db.query(
    `SELECT pg_total_relation_size(to_regclass($1))::float8 AS total, pg_table_size(to_regclass($1))::float8 AS heap, pg_indexes_size(to_regclass($1))::float8 AS indexes`,
    [table],
  );
  const r = rows[0] as { total: number; heap: number; indexes: number };
  const { rows: idx } = await db.query(
    `SELECT c.relname AS name, pg_relation_size(c.oid)::float8 AS bytes FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = to_regclass($1) ORDER BY 1`,
    [table],
  );
  return { ...r, perIndex: Object.fromEntries(idx.map((x) => [x.name as string, x.bytes as number])) };
}

async function main() {
  const url = serverUrl();
  const started = new Date();
  const tag = `${process.pid}`;
  const ours = `bench_pg_${tag}`;
  const theirs = `bench_langchain_${tag}`;
  const admin = new pg.Pool({ connectionString: url, max: 2 });
  const cleanup = async () => {
    await admin.query(`DROP TABLE IF EXISTS "${ours}", "${ours}_meta", "${theirs}"; DROP SEQUENCE IF EXISTS "${ours}_seq"`).catch((e) => console.error(`cleanup failed: ${(e as Error).message}`));
  };
  process.once('SIGINT', () => {
    log('interrupted: dropping the benchmark tables');
    void cleanup().finally(() => process.exit(130));
  });
  const [{ server }] = (await admin.query<{ server: string }>(`SELECT version() || ', pgvector ' || (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS server`)).rows as [{ server: string }];
  const settings = Object.fromEntries(
    (await admin.query<{ name: string; setting: string }>(`SELECT name, setting || coalesce(unit, '') AS setting FROM pg_settings WHERE name IN ('shared_buffers', 'maintenance_work_mem', 'max_parallel_maintenance_workers', 'synchronous_commit', 'work_mem')`)).rows.map((r) => [r.name, r.setting]),
  );
  const rows: SystemRow[] = [];
  const notes: string[] = [];
  /** What is still open if the run fails half-way (closed in order, errors ignored). */
  const closers: (() => Promise<unknown>)[] = [];
  const json: Record<string, unknown> = {};
  try {
    log(`generating ${N.toLocaleString('en-US')} documents (+${N_INDEXED} to insert into the built indexes) and ${Q} queries…`);
    const data = generate(N + N_INDEXED, Q + WARMUP + Q_EQUAL, SEED);
    const queries = data.queries;
    const batches = (from: number, to: number) => {
      const out: HybridEncodedDocument[][] = [];
      for (let s = from; s < to; s += BATCH) out.push(Array.from({ length: Math.min(BATCH, to - s) }, (_, i) => docAt(data, s + i)));
      return out;
    };
    const ids = (r: HybridSearchResult[]) => r.map((x) => x.id);
    const FUSED: HybridSearchOptions = { k: K };
    const DENSE: HybridSearchOptions = { k: K, weights: { dense: 1, sparse: 0 } };

    // MemoryHybridIndex: the exact reference.
    log('MemoryHybridIndex: adding…');
    const memory = new MemoryHybridIndex({ dim: DIM });
    let t = performance.now();
    for (const b of batches(0, N)) memory.addEncoded(b);
    memory.compact();
    const memoryAdd = N / ((performance.now() - t) / 1000);
    const wantFused = await Promise.all(queries.map(async (q) => ids(await memory.searchEncoded(q, FUSED))));
    const wantDense = await Promise.all(queries.map(async (q) => ids(await memory.searchEncoded(q, DENSE))));

    // PgHybridIndex on the server: bulk load without HNSW, then build the indexes by re-opening with ann.
    const open = (o: Partial<PgHybridIndexOptions>) => PgHybridIndex.open({ connectionString: url, table: ours, model: null, dim: DIM, ...o });
    log(`PgHybridIndex (server): bulk load into ${ours} (ann: false)…`);
    const loader = await open({ ann: false });
    t = performance.now();
    for (const b of batches(0, N)) await loader.addEncoded(b);
    const bulkSec = (performance.now() - t) / 1000;
    await loader.close();
    log(`PgHybridIndex (server): ${(N / bulkSec).toFixed(0)} docs/s; building HNSW indexes (maintenance_work_mem ${BUILD_MEM})…`);
    await admin.query(`VACUUM ANALYZE "${ours}"`);
    const buildPool = new pg.Pool({ connectionString: url, max: 1, options: `-c maintenance_work_mem=${BUILD_MEM}` });
    t = performance.now();
    const build = await withBuildProgress(url, ours, async () => (await PgHybridIndex.open({ client: buildPool, table: ours, model: null, dim: DIM, ann: true })).close());
    const buildSec = (performance.now() - t) / 1000;
    await buildPool.end();
    log(`PgHybridIndex (server): indexes built in ${buildSec.toFixed(1)} s (${Object.entries(build.perIndex).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(', ')})`);
    await admin.query(`ANALYZE "${ours}"`);
    const ourBytes = await relationBytes(admin, ours);
    const pgHnsw = await open({ sparseSearch: 'hnsw' });
    const pgExactSparse = await open({ sparseSearch: 'exact' });
    const pgLow = await open({ ann: { efSearch: 40 } });
    const pgEf200 = await open({ ann: { efSearch: 200 } });
    closers.push(() => pgHnsw.close(), () => pgExactSparse.close(), () => pgLow.close(), () => pgEf200.close());

    // LangChain PGVectorStore: same server, dense only, its own HNSW index after the load (its documented order).
    let store: PGVectorStore | undefined;
    let lcRow: SystemRow | undefined;
    if (!args['skip-langchain']) {
      log(`LangChain PGVectorStore: loading ${theirs}…`);
      const lcPool = new pg.Pool({ connectionString: url, max: 3, options: `-c maintenance_work_mem=${BUILD_MEM}` });
      closers.push(() => (store ? store.end() : lcPool.end()));
      store = await PGVectorStore.initialize(new GivenVectorEmbeddings(), { pool: lcPool, tableName: theirs, dimensions: DIM, distanceStrategy: 'innerProduct' });
      t = performance.now();
      for (let s = 0; s < N; s += BATCH) {
        const e = Math.min(N, s + BATCH);
        const vectors: number[][] = [];
        const docs: Document[] = [];
        for (let d = s; d < e; d++) {
          vectors.push(Array.from(data.dense.subarray(d * DIM, (d + 1) * DIM)));
          docs.push(new Document({ pageContent: words(data.sparse[d]!), metadata: { d, group: d % 10 } }));
        }
        await store.addVectors(vectors, docs);
      }
      const lcAdd = N / ((performance.now() - t) / 1000);
      t = performance.now();
      await store.createHnswIndex({ dimensions: DIM, namespace: theirs });
      const lcBuild = (performance.now() - t) / 1000;
      const { rows: lcIdx } = await admin.query(`SELECT indexname FROM pg_indexes WHERE tablename = $1 AND indexdef ILIKE '%hnsw%'`, [theirs]);
      if (lcIdx.length !== 1) throw new Error(`PGVectorStore.createHnswIndex did not create an HNSW index on ${theirs}`);
      await admin.query(`ANALYZE "${theirs}"`);
      const lcBytes = await relationBytes(admin, theirs);
      const plan = (await admin.query(`EXPLAIN SELECT *, "embedding" <#> $1 as "_distance" FROM ${theirs} ORDER BY "_distance" ASC LIMIT 10`, [`[${Array.from(queries[0]!.dense).join(',')}]`])).rows
        .map((r) => r['QUERY PLAN'])
        .join(' ');
      const usesIndex = /Index Scan using/.test(plan);
      log(`LangChain PGVectorStore: ${lcAdd.toFixed(0)} docs/s, HNSW in ${lcBuild.toFixed(1)} s, its query ${usesIndex ? 'uses' : 'does NOT use'} the index`);
      lcRow = {
        system: "LangChain PGVectorStore (dense only, vector(1024), vector_ip_ops HNSW)",
        docs: N,
        insertDocsPerSec: lcAdd,
        insertNote: 'addVectors, 1,000 a call (its chunkSize 500), no index; text vector literals',
        buildSeconds: lcBuild,
        buildNote: 'createHnswIndex after the load (m 16, ef_construction 64)',
        bytesPerDoc: lcBytes.total / N,
        bytesNote: `heap+TOAST ${(lcBytes.heap / N / 1024).toFixed(1)} KiB, indexes ${(lcBytes.indexes / N / 1024).toFixed(1)} KiB`,
      };
      json.langchain = { bytes: lcBytes, usesIndex, plan };
    }

    // PGlite (in process, in memory), smaller N: its WebAssembly build of pgvector is ~5-10x slower.
    let pglite: PGlite | undefined;
    let pgl: PgHybridIndex | undefined;
    let memorySubset: MemoryHybridIndex | undefined;
    let pgliteRow: SystemRow | undefined;
    if (!args['skip-pglite']) {
      log(`PgHybridIndex (PGlite): ${N_PGLITE.toLocaleString('en-US')} documents…`);
      const db = new PGlite({ extensions: { vector } });
      pglite = db;
      closers.push(() => db.close());
      await db.waitReady;
      const l = await PgHybridIndex.open({ client: pglite, table: 'bench_pglite', model: null, dim: DIM, ann: false });
      t = performance.now();
      for (const b of batches(0, N_PGLITE)) await l.addEncoded(b);
      const add = N_PGLITE / ((performance.now() - t) / 1000);
      await pglite.query(`SET maintenance_work_mem = '${BUILD_MEM}'`);
      t = performance.now();
      await (await PgHybridIndex.open({ client: pglite, table: 'bench_pglite', model: null, dim: DIM, ann: true })).close();
      const b = (performance.now() - t) / 1000;
      await pglite.query(`RESET maintenance_work_mem`);
      await pglite.query(`ANALYZE bench_pglite`);
      const bytes = await relationBytes(db as unknown as Parameters<typeof relationBytes>[0], 'bench_pglite');
      pgl = await PgHybridIndex.open({ client: pglite, table: 'bench_pglite', model: null, dim: DIM });
      memorySubset = new MemoryHybridIndex({ dim: DIM });
      for (const bb of batches(0, N_PGLITE)) memorySubset.addEncoded(bb);
      log(`PgHybridIndex (PGlite): ${add.toFixed(0)} docs/s, HNSW in ${b.toFixed(1)} s`);
      pgliteRow = {
        system: `bge-m3-rag PgHybridIndex, PGlite in memory (ann, sparseSearch 'hnsw')`,
        docs: N_PGLITE,
        insertDocsPerSec: add,
        insertNote: 'bulk, ann: false (text parameters: PGlite has no binary ones)',
        buildSeconds: b,
        buildNote: 're-open with ann: true (both indexes)',
        bytesPerDoc: bytes.total / N_PGLITE,
        bytesNote: `heap+TOAST ${(bytes.heap / N_PGLITE / 1024).toFixed(1)} KiB, indexes ${(bytes.indexes / N_PGLITE / 1024).toFixed(1)} KiB`,
      };
      json.pgliteBytes = bytes;
    }

    // Searches on the server and in memory, interleaved query by query (rotating the order).
    log('searching (interleaved)…');
    type Timed = { ms: number[]; recall: number[] };
    const timed = () => ({ ms: [], recall: [] }) as Timed;
    const res = { hnswFused: timed(), exactSparseFused: timed(), memoryFused: timed(), hnswDense: timed(), memoryDense: timed(), lcDense: timed(), lowDense: timed(), lcDense2: timed(), ef200Fused: timed(), repeatFused: timed(), repeatDense: timed(), repeatLc: timed() };
    const lowRatio: number[] = [];
    const denseRatio: number[] = [];
    const fusedRatio: number[] = [];
    const measure = async (into: Timed | undefined, want: string[], run: () => Promise<string[]>) => {
      const s = performance.now();
      const got = await run();
      const ms = performance.now() - s;
      if (into) {
        into.ms.push(ms);
        into.recall.push(recallAt(want, got));
      }
      return ms;
    };
    const lcSearch = async (q: (typeof queries)[number]) => (await store!.similaritySearchVectorWithScore(Array.from(q.dense), K)).map(([d]) => `d${(d.metadata as { d: number }).d}`);
    // Queries Q… are warm-up queries (not measured); measured queries are each seen first by the
    // dense-only pass (both systems cold for that query), then by the fused pass.
    const order = (i: number) => (i < 0 ? Q - i - 1 : i);
    log('  dense-only pass: PgHybridIndex and PGVectorStore alternating (A B / B A), then MemoryHybridIndex');
    for (let i = -WARMUP; i < Q; i++) {
      const at = order(i);
      const q = queries[at]!;
      const w = i >= 0;
      const a = () => measure(w ? res.hnswDense : undefined, wantDense[at]!, async () => ids(await pgHnsw.searchEncoded(q, DENSE)));
      const b = store ? () => measure(w ? res.lcDense : undefined, wantDense[at]!, () => lcSearch(q)) : undefined;
      let msA: number;
      let msB: number | undefined;
      if (at % 2 === 0) {
        msA = await a();
        msB = await b?.();
      } else {
        msB = await b?.();
        msA = await a();
      }
      if (w && msB !== undefined) denseRatio.push(msA / msB);
      await measure(w ? res.memoryDense : undefined, wantDense[at]!, async () => ids(await memory.searchEncoded(q, DENSE)));
    }
    log(`  fused pass: PgHybridIndex 'hnsw' (efSearch 100 and 200), MemoryHybridIndex${Q_EXACT_SPARSE > 0 ? ` and (first ${Q_EXACT_SPARSE} queries) PgHybridIndex 'exact'` : ''}, order rotating`);
    for (let i = -WARMUP; i < Q; i++) {
      const at = order(i);
      const q = queries[at]!;
      const w = i >= 0;
      const fused: (() => Promise<number>)[] = [
        () => measure(w ? res.hnswFused : undefined, wantFused[at]!, async () => ids(await pgHnsw.searchEncoded(q, FUSED))),
        () => measure(w ? res.memoryFused : undefined, wantFused[at]!, async () => ids(await memory.searchEncoded(q, FUSED))),
        () => measure(w ? res.ef200Fused : undefined, wantFused[at]!, async () => ids(await pgEf200.searchEncoded(q, FUSED))),
      ];
      if (i < Q_EXACT_SPARSE) fused.push(() => measure(w ? res.exactSparseFused : undefined, wantFused[at]!, async () => ids(await pgExactSparse.searchEncoded(q, FUSED))));
      const fusedMs: number[] = [];
      for (let j = 0; j < fused.length; j++) fusedMs[(j + i + WARMUP) % fused.length] = await fused[(j + i + WARMUP) % fused.length]!();
      if (w) fusedRatio.push(fusedMs[0]! / fusedMs[1]!);
      if (w && (i + 1) % 50 === 0) log(`  ${i + 1}/${Q} queries`);
    }

    if (store && Q_EQUAL > 0) {
      log(`  equal-effort dense pass: PgHybridIndex { candidates: 10 }, ann { efSearch: 40 } and PGVectorStore alternating, ${Q_EQUAL} fresh queries`);
      const LOW: HybridSearchOptions = { ...DENSE, candidates: K };
      for (let i = 0; i < Q_EQUAL; i++) {
        const at = Q + WARMUP + i;
        const q = queries[at]!;
        const a = () => measure(res.lowDense, wantDense[at]!, async () => ids(await pgLow.searchEncoded(q, LOW)));
        const b = () => measure(res.lcDense2, wantDense[at]!, () => lcSearch(q));
        let msA: number;
        let msB: number;
        if (i % 2 === 0) {
          msA = await a();
          msB = await b();
        } else {
          msB = await b();
          msA = await a();
        }
        lowRatio.push(msA / msB);
      }
    }

    log(`  repeat pass: the same ${Q} queries again (their pages now cached), PgHybridIndex fused and dense-only, PGVectorStore`);
    for (let i = 0; i < Q; i++) {
      const q = queries[i]!;
      const runs = [
        () => measure(res.repeatFused, wantFused[i]!, async () => ids(await pgHnsw.searchEncoded(q, FUSED))),
        () => measure(res.repeatDense, wantDense[i]!, async () => ids(await pgHnsw.searchEncoded(q, DENSE))),
        ...(store ? [() => measure(res.repeatLc, wantDense[i]!, () => lcSearch(q))] : []),
      ];
      for (let j = 0; j < runs.length; j++) await runs[(i + j) % runs.length]!();
    }

    // PGlite against the memory index on the same subset.
    const pgliteRes = { fused: timed(), dense: timed() };
    if (pgl && memorySubset) {
      log('searching PGlite…');
      for (let i = -WARMUP; i < Q_PGLITE; i++) {
        const q = queries[order(i)]!;
        const w = i >= 0;
        const want = ids(await memorySubset.searchEncoded(q, FUSED));
        const wantD = ids(await memorySubset.searchEncoded(q, DENSE));
        await measure(w ? pgliteRes.fused : undefined, want, async () => ids(await pgl!.searchEncoded(q, FUSED)));
        await measure(w ? pgliteRes.dense : undefined, wantD, async () => ids(await pgl!.searchEncoded(q, DENSE)));
      }
      pgliteRow!.fused = summarize(pgliteRes.fused.ms);
      pgliteRow!.fusedRecall = mean(pgliteRes.fused.recall);
      pgliteRow!.dense = summarize(pgliteRes.dense.ms);
      pgliteRow!.denseRecall = mean(pgliteRes.dense.recall);
    }

    // Exact mode on the server returns exactly what the memory index returns.
    log(`exact mode (ann: false) on the server: ${EXACT_CHECKS} queries…`);
    const pgExact = await open({ ann: false });
    let identical = 0;
    const exactMs: number[] = [];
    for (let i = 0; i < EXACT_CHECKS; i++) {
      const s = performance.now();
      const got = await pgExact.searchEncoded(queries[i]!, FUSED);
      exactMs.push(performance.now() - s);
      const want = await memory.searchEncoded(queries[i]!, FUSED);
      if (JSON.stringify(got.map((r) => [r.id, r.score, r.dense, r.sparse])) === JSON.stringify(want.map((r) => [r.id, r.score, r.dense, r.sparse]))) identical++;
    }
    await pgExact.close();

    // Inserts into the built (indexed) tables.
    log(`inserting ${N_INDEXED} more documents into the indexed tables…`);
    t = performance.now();
    for (const b of batches(N, N + N_INDEXED)) await pgHnsw.addEncoded(b);
    const indexedAdd = N_INDEXED / ((performance.now() - t) / 1000);
    let lcIndexedAdd: number | undefined;
    if (store) {
      t = performance.now();
      const vectors: number[][] = [];
      const docs: Document[] = [];
      for (let d = N; d < N + N_INDEXED; d++) {
        vectors.push(Array.from(data.dense.subarray(d * DIM, (d + 1) * DIM)));
        docs.push(new Document({ pageContent: words(data.sparse[d]!), metadata: { d, group: d % 10 } }));
      }
      await store.addVectors(vectors, docs);
      lcIndexedAdd = N_INDEXED / ((performance.now() - t) / 1000);
    }
    log(`  PgHybridIndex ${indexedAdd.toFixed(0)} docs/s${lcIndexedAdd ? `, PGVectorStore ${lcIndexedAdd.toFixed(0)} docs/s` : ''}`);

    for (const close of closers.splice(0)) await close().catch(() => {});

    // --- rows ---
    const denseIndex = Object.keys(ourBytes.perIndex).find((k) => k.endsWith('_dense_hnsw'));
    const sparseIndex = Object.keys(ourBytes.perIndex).find((k) => k.endsWith('_sparse_hnsw'));
    const perIndexBuild = Object.entries(build.perIndex).map(([k, v]) => `${k.replace(`${ours}_`, '')} ~${v.toFixed(0)} s`).join(', ');
    const serverBase = {
      docs: N,
      insertDocsPerSec: N / bulkSec,
      insertNote: `bulk, ann: false (no HNSW); into the indexed table: ${indexedAdd.toFixed(0)} docs/s`,
      buildSeconds: buildSec,
      buildNote: `re-open with ann: true: ${perIndexBuild}`,
      bytesPerDoc: ourBytes.total / N,
      bytesNote: `heap+TOAST ${(ourBytes.heap / N / 1024).toFixed(1)} KiB, indexes ${(ourBytes.indexes / N / 1024).toFixed(1)} KiB (dense HNSW ${((ourBytes.perIndex[denseIndex!] ?? 0) / N / 1024).toFixed(1)}, sparse HNSW ${((ourBytes.perIndex[sparseIndex!] ?? 0) / N / 1024).toFixed(1)})`,
    };
    rows.push({
      system: `bge-m3-rag PgHybridIndex, server (ann, sparseSearch 'hnsw', the default)`,
      ...serverBase,
      fused: summarize(res.hnswFused.ms),
      fusedRecall: mean(res.hnswFused.recall),
      dense: summarize(res.hnswDense.ms),
      denseRecall: mean(res.hnswDense.recall),
    });
    rows.push({ system: `bge-m3-rag PgHybridIndex, server (ann { efSearch: 200 }, sparseSearch 'hnsw')`, docs: N, insertNote: 'same table', fused: summarize(res.ef200Fused.ms), fusedRecall: mean(res.ef200Fused.recall) });
    if (res.lowDense.ms.length) {
      rows.push({
        system: `bge-m3-rag PgHybridIndex, server, dense-only at PGVectorStore's effort ({ candidates: 10 }, ann { efSearch: 40 })`,
        docs: N,
        insertNote: 'same table',
        dense: summarize(res.lowDense.ms),
        denseRecall: mean(res.lowDense.recall),
      });
    }
    rows.push({ system: `bge-m3-rag PgHybridIndex, server (ann, sparseSearch 'exact')`, docs: N, insertNote: 'same table', fused: summarize(res.exactSparseFused.ms), fusedRecall: mean(res.exactSparseFused.recall) });
    if (pgliteRow) rows.push(pgliteRow);
    rows.push({
      system: 'bge-m3-rag MemoryHybridIndex (exact reference)',
      docs: N,
      insertDocsPerSec: memoryAdd,
      fused: summarize(res.memoryFused.ms),
      fusedRecall: mean(res.memoryFused.recall),
      dense: summarize(res.memoryDense.ms),
      denseRecall: mean(res.memoryDense.recall),
    });
    if (lcRow) {
      lcRow.dense = summarize(res.lcDense.ms);
      lcRow.denseRecall = mean(res.lcDense.recall);
      lcRow.insertNote += lcIndexedAdd ? `; into the indexed table: ${lcIndexedAdd.toFixed(0)} docs/s` : '';
      rows.push(lcRow);
    }

    // --- targets ---
    const main = rows[0]!;
    const lcDenseP50 = lcRow?.dense?.p50;
    const ratio = summarize(denseRatio);
    const checks: string[] = [];
    checks.push(`exact mode (ann: false) on the server returned exactly MemoryHybridIndex's results (ids and scores) on ${identical}/${EXACT_CHECKS} queries (p50 ${percentile([...exactMs].sort((a, b) => a - b), 0.5).toFixed(0)} ms a query: full scans)`);
    if (ratio) checks.push(`dense-only, interleaved per query: PgHybridIndex / PGVectorStore time ratio median ${ratio.p50.toFixed(2)} (p25-p75 ${ratio.p25.toFixed(2)}-${ratio.p75.toFixed(2)}, n=${ratio.n}); PgHybridIndex fetches 100 candidates (ef_search 100) and rescores them exactly, PGVectorStore returns its HNSW top-10 (ef_search 40)`);
    const lr = summarize(lowRatio);
    const lc2 = summarize(res.lcDense2.ms);
    if (lr && lc2) checks.push(`dense-only at equal effort (PgHybridIndex { candidates: 10 }, efSearch 40 vs PGVectorStore, ${lr.n} fresh queries, alternating): time ratio median ${lr.p50.toFixed(2)} (p25-p75 ${lr.p25.toFixed(2)}-${lr.p75.toFixed(2)}); PGVectorStore p50 ${lc2.p50.toFixed(1)} ms in that pass, recall@10 ${mean(res.lcDense2.recall).toFixed(3)} vs ${mean(res.lowDense.recall).toFixed(3)}`);
    const rf = summarize(res.repeatFused.ms);
    const rd = summarize(res.repeatDense.ms);
    const rl = summarize(res.repeatLc.ms);
    if (rf && rd) checks.push(`the same ${Q} queries repeated (pages they touch now in shared_buffers or the OS cache): PgHybridIndex fused p50 ${rf.p50.toFixed(1)} ms (p95 ${rf.p95.toFixed(1)}), dense-only p50 ${rd.p50.toFixed(1)} ms${rl ? `, PGVectorStore p50 ${rl.p50.toFixed(1)} ms` : ''}`);
    const fr = summarize(fusedRatio);
    if (fr) checks.push(`fused, interleaved per query: PgHybridIndex server / MemoryHybridIndex time ratio median ${fr.p50.toFixed(2)} (p25-p75 ${fr.p25.toFixed(2)}-${fr.p75.toFixed(2)})`);
    const target = (name: string, ok: boolean, got: string) => checks.push(`target ${name}: ${ok ? 'MET' : 'MISSED'} (${got})`);
    if (N >= 100_000) {
      target('fused recall@10 >= 0.98 at 100k', main.fusedRecall! >= 0.98, main.fusedRecall!.toFixed(3));
      target('fused p50 <= 25 ms at 100k', main.fused!.p50 <= 25, `${main.fused!.p50.toFixed(1)} ms`);
      target('insert >= 2,000 docs/s at 100k (bulk load)', main.insertDocsPerSec! >= 2000, `${main.insertDocsPerSec!.toFixed(0)} docs/s; ${indexedAdd.toFixed(0)} docs/s into the HNSW-indexed table`);
      if (lcDenseP50 !== undefined) target('dense p50 no slower than PGVectorStore at 100k', main.dense!.p50 <= lcDenseP50, `${main.dense!.p50.toFixed(1)} vs ${lcDenseP50.toFixed(1)} ms`);
    }
    const lcJson = json.langchain as { usesIndex: boolean } | undefined;
    if (lcJson) notes.push(`PGVectorStore's query (SELECT *, embedding <#> $1 … ORDER BY _distance LIMIT 10) ${lcJson.usesIndex ? 'uses its HNSW index (EXPLAIN)' : 'does not use its HNSW index at this size: PostgreSQL plans a sequential scan and sort (EXPLAIN), an exact search'}.`);
    notes.push(
      `Sparse HNSW: pgvector's sparsevec HNSW holds at most 1,000 non-zeros per vector, so the ${data.long.toLocaleString('en-US')} long documents (of ${(N + N_INDEXED).toLocaleString('en-US')}) are indexed by their top 1,000 weights; candidates are rescored on the full vectors.`,
    );
    Object.assign(json, {
      ourBytes,
      buildPerIndex: build.perIndex,
      bulkSeconds: bulkSec,
      indexedInsertDocsPerSec: indexedAdd,
      langchainIndexedInsertDocsPerSec: lcIndexedAdd,
      denseRatio: ratio,
      equalEffortDenseRatio: lr,
      repeat: { fused: rf, dense: rd, langchain: rl },
      fusedRatio: fr,
      exactIdentical: { identical, of: EXACT_CHECKS, ms: exactMs },
      perQuery: { hnswFusedMs: res.hnswFused.ms, exactSparseFusedMs: res.exactSparseFused.ms, memoryFusedMs: res.memoryFused.ms, hnswDenseMs: res.hnswDense.ms, lcDenseMs: res.lcDense.ms },
    });

    // --- report ---
    const fmtMs = (l?: Latency) => (l ? `${l.p50.toFixed(1)} / ${l.p95.toFixed(1)} (n=${l.n})` : '—');
    const fmtR = (x?: number) => (x === undefined || Number.isNaN(x) ? '—' : x.toFixed(3));
    const fmtN = (x?: number, d = 0) => (x === undefined ? '—' : x.toLocaleString('en-US', { maximumFractionDigits: d }));
    const load = loadavg().map((x) => x.toFixed(2)).join(' / ');
    const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GB, Node ${process.version}`;
    const table = [
      '| system | docs | insert (docs/s) | HNSW build (s) | bytes/doc | fused top-10 p50 / p95 ms | fused recall@10 | dense-only p50 / p95 ms | dense recall@10 |',
      '| --- | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: |',
      ...rows.map(
        (r) =>
          `| ${r.system} | ${fmtN(r.docs)} | ${fmtN(r.insertDocsPerSec)} | ${fmtN(r.buildSeconds, 1)} | ${r.bytesPerDoc === undefined ? '—' : `${(r.bytesPerDoc / 1024).toFixed(1)} KiB`} | ${fmtMs(r.fused)} | ${fmtR(r.fusedRecall)} | ${fmtMs(r.dense)} | ${fmtR(r.denseRecall)} |`,
      ),
    ];
    const details = rows.flatMap((r) => [r.insertNote && `${r.system}: insert: ${r.insertNote}`, r.buildNote && `${r.system}: build: ${r.buildNote}`, r.bytesNote && `${r.system}: bytes: ${r.bytesNote}`].filter(Boolean) as string[]);
    const md = [
      `# PostgreSQL benchmark (${started.toISOString()})`,
      '',
      `Machine: ${machine}; ${server}; server settings ${Object.entries(settings).map(([k, v]) => `${k}=${v}`).join(', ')} (maintenance_work_mem=${BUILD_MEM} on the connections that build HNSW indexes), a streaming replica on the same machine. Shared with other work while measured (load average at the end ${load} over 1/5/15 min), so numbers can be noisy; the server and this process share the 2 cores.`,
      `Data: ${N.toLocaleString('en-US')} synthetic documents (${DIM}-d unit vectors with topic structure; 30-300 lexical weights, Zipf(1) over ${VOCAB.toLocaleString('en-US')} ids plus topical ids; ${data.long.toLocaleString('en-US')} long documents with 1,000-2,500 weights), ${Q} queries (perturbed copies of documents, 5-20 weights), top-${K}, seed ${SEED}. PGlite: the first ${N_PGLITE.toLocaleString('en-US')} documents${N_PGLITE < N ? ' (its WebAssembly pgvector builds and searches ~5-10x slower than the server, so the full set would take too long)' : ''}, ${Q_PGLITE} queries, recall against a MemoryHybridIndex on the same documents.`,
      `"fused" is the default search (weighted fusion dense 1 / sparse 0.3, 100 candidates per leg, exact rescoring); recall@10 is against MemoryHybridIndex's exact fused (or dense-only) top-10 on the same documents. "dense-only" is weights { dense: 1, sparse: 0 } for bge-m3-rag and similaritySearchVectorWithScore(vector, 10) for PGVectorStore. Latencies are per query, one client, warm caches (${WARMUP} warm-up queries), systems interleaved query by query; sparseSearch 'exact' runs ${Q_EXACT_SPARSE} queries (a full scan each). Insert: addEncoded in batches of ${BATCH.toLocaleString('en-US')}; bytes/doc: pg_total_relation_size (heap, TOAST and every index) over the document count.`,
      '',
      ...table,
      '',
      ...details.map((d) => `- ${d}`),
      '',
      ...checks.map((c) => `- ${c}`),
      ...notes.map((n) => `- ${n}`),
      '',
    ].join('\n');
    console.log(md);
    mkdirSync(args.out, { recursive: true });
    writeFileSync(join(args.out, 'postgres-latest.md'), md);
    writeFileSync(
      join(args.out, 'postgres-latest.json'),
      `${JSON.stringify({ date: started.toISOString(), machine, server, serverSettings: settings, loadavg: loadavg(), params: { docs: N, queries: Q, pgliteDocs: N_PGLITE, pgliteQueries: Q_PGLITE, exactSparseQueries: Q_EXACT_SPARSE, indexedInserts: N_INDEXED, dim: DIM, vocab: VOCAB, k: K, batch: BATCH, seed: SEED, quick: QUICK, buildMaintenanceWorkMem: BUILD_MEM }, rows, checks, notes, ...json }, null, 2)}\n`,
    );
    log(`done in ${((performance.now() - T0) / 60000).toFixed(1)} min; wrote ${join(args.out, 'postgres-latest.md')} and .json`);
  } finally {
    for (const close of closers.splice(0)) await close().catch(() => {});
    await cleanup();
    await admin.end();
  }
}

await main();
