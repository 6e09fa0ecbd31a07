/**
 * Hybrid retrieval benchmark: `MemoryHybridIndex` on synthetic BGE-M3-shaped encodings, beside
 * LangChain's `MemoryVectorStore` (dense), `BM25Retriever` (lexical) and `EnsembleRetriever`
 * (BM25 + MemoryVectorStore, RRF) on the same documents.
 *
 *   npm run bench:hybrid                      # 10k and 100k documents (a few minutes)
 *   npm run bench:hybrid -- --sizes 2000      # quick run while developing
 *
 * Synthetic data (no model needed; the index takes precomputed encodings through `addEncoded` /
 * `searchEncoded`): 1024-d random unit vectors; 30–300 distinct tokens per document with weights in
 * (0, 0.4], token ids drawn Zipf(1) over a 250k vocabulary so that frequent tokens have long
 * postings as in real text; queries are noisy copies of random documents (dense + noise, half of
 * their tokens from the document). Every system gets the same vectors and the same text (each token
 * id written as a word, for BM25). Latencies are per query, top-10, single client; p50/p95 over the
 * measured queries (the slow baselines get fewer queries; the sample count is printed).
 * Writes bench/results/hybrid-latest.json and .md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { EnsembleRetriever } from '@langchain/classic/retrievers/ensemble';
import { MemoryVectorStore } from '@langchain/classic/vectorstores/memory';
import { BM25Retriever } from '@langchain/community/retrievers/bm25';
import { Document } from '@langchain/core/documents';
import { Embeddings } from '@langchain/core/embeddings';
import { MemoryHybridIndex, type HybridSearchOptions } from '../src/index.js';
import { mulberry32 } from './lib/prng.js';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000,100000' },
    queries: { type: 'string', default: '100' },
    dim: { type: 'string', default: '1024' },
    vocab: { type: 'string', default: '250000' },
    seed: { type: 'string', default: '42' },
    out: { type: 'string', default: join(dirname(fileURLToPath(import.meta.url)), 'results') },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log('Usage: npm run bench:hybrid -- [--sizes 10000,100000] [--queries 100] [--dim 1024] [--vocab 250000] [--seed 42] [--out bench/results]');
  process.exit(0);
}
const SIZES = args.sizes.split(',').map(Number);
const QUERIES = Number(args.queries);
const DIM = Number(args.dim);
const VOCAB = Number(args.vocab);
const K = 10;

// --- synthetic data --------------------------------------------------------------------------


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

interface Sparse {
  indices: Int32Array;
  values: Float32Array;
}

function randomUnit(rand: () => number, out: Float32Array, offset: number, base?: Float32Array, baseOffset = 0, noise = 1): void {
  let ss = 0;
  for (let i = 0; i < DIM; i++) {
    const v = (base ? base[baseOffset + i]! : 0) + noise * (rand() * 2 - 1);
    out[offset + i] = v;
    ss += v * v;
  }
  const inv = 1 / Math.sqrt(ss);
  for (let i = 0; i < DIM; i++) out[offset + i]! *= inv;
}

function sparseFrom(tokens: Set<number>, rand: () => number): Sparse {
  const indices = Int32Array.from([...tokens].sort((a, b) => a - b));
  const values = new Float32Array(indices.length);
  for (let i = 0; i < values.length; i++) values[i] = 0.4 * (1 - rand()); // (0, 0.4]
  return { indices, values };
}

const words = (s: Sparse) => Array.from(s.indices, (t) => `w${t}x`).join(' ');

function generate(n: number, seed: number) {
  const rand = mulberry32(seed);
  const zipf = zipfSampler(VOCAB, rand);
  const dense = new Float32Array(n * DIM);
  const sparse: Sparse[] = new Array(n);
  const texts: string[] = new Array(n);
  for (let d = 0; d < n; d++) {
    randomUnit(rand, dense, d * DIM);
    const nnz = 30 + Math.floor(rand() * 271);
    const tokens = new Set<number>();
    while (tokens.size < nnz) tokens.add(zipf());
    sparse[d] = sparseFrom(tokens, rand);
    texts[d] = words(sparse[d]!);
  }
  const queries = Array.from({ length: QUERIES }, () => {
    const src = Math.floor(rand() * n);
    const qd = new Float32Array(DIM);
    randomUnit(rand, qd, 0, dense, src * DIM, 0.06);
    const tokens = new Set<number>();
    const own = sparse[src]!.indices;
    while (tokens.size < 6) tokens.add(own[Math.floor(rand() * own.length)]!);
    while (tokens.size < 12) tokens.add(zipf());
    const qs = sparseFrom(tokens, rand);
    return { dense: qd, sparse: qs, text: words(qs) };
  });
  return { dense, sparse, texts, queries };
}

// --- measurement helpers ---------------------------------------------------------------------

const gc = (globalThis as { gc?: () => void }).gc;
/**
 * Heap + external bytes in use after a full GC. V8 releases ArrayBuffer backing stores on a
 * background sweeper, so `external` is read only once it stops changing.
 */
async function usedBytes(): Promise<number> {
  let last = -1;
  for (let i = 0; i < 20; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 25));
    const m = process.memoryUsage();
    const now = m.heapUsed + m.external;
    if (Math.abs(now - last) < 1 << 20) return now;
    last = now;
  }
  return last;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

interface Latency {
  p50: number;
  p95: number;
  n: number;
}

async function time<T>(count: number, warmup: number, run: (i: number) => Promise<T>): Promise<Latency> {
  for (let i = 0; i < warmup; i++) await run(i);
  const ms: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    await run(i);
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  return { p50: percentile(ms, 0.5), p95: percentile(ms, 0.95), n: count };
}

/** Returns the precomputed vector of a query text (LangChain's retrievers embed the query themselves). */
class LookupEmbeddings extends Embeddings {
  constructor(private readonly table: Map<string, number[]>) {
    super({});
  }
  async embedDocuments(texts: string[]): Promise<number[][]> {
    return texts.map((t) => this.embedOne(t));
  }
  async embedQuery(text: string): Promise<number[]> {
    return this.embedOne(text);
  }
  private embedOne(text: string): number[] {
    const v = this.table.get(text);
    if (!v) throw new Error('LookupEmbeddings: unknown text');
    return v;
  }
}

interface Row {
  system: string;
  docs: number;
  addDocsPerSec: number | null;
  bytesPerDoc: number | null;
  dense?: Latency;
  sparse?: Latency;
  fused?: Latency;
}

// --- the runs ------------------------------------------------------------------------------

async function benchSize(n: number, seed: number): Promise<{ rows: Row[]; denseTop10Agrees: boolean }> {
  const log = (s: string) => console.error(`[${n}] ${s}`);
  log('generating synthetic encodings…');
  const data = generate(n, seed);
  const rows: Row[] = [];

  // MemoryHybridIndex
  let before = await usedBytes();
  let t = performance.now();
  const index = new MemoryHybridIndex({ dim: DIM });
  for (let start = 0; start < n; start += 1000) {
    const batch = [];
    for (let d = start; d < Math.min(n, start + 1000); d++) {
      batch.push({ id: String(d), text: data.texts[d]!, dense: data.dense.subarray(d * DIM, (d + 1) * DIM), sparse: data.sparse[d]! });
    }
    index.addEncoded(batch);
  }
  index.compact(); // returns the growth headroom after a bulk load (documented usage)
  const addSec = (performance.now() - t) / 1000;
  const ourBytes = (await usedBytes()) - before;
  log(`MemoryHybridIndex: added in ${addSec.toFixed(2)} s`);
  const q = data.queries;
  const search = (o: HybridSearchOptions) => (i: number) => index.searchEncoded(q[i % q.length]!, { k: K, ...o });
  rows.push({
    system: 'bge-m3-rag MemoryHybridIndex',
    docs: n,
    addDocsPerSec: n / addSec,
    bytesPerDoc: ourBytes / n,
    dense: await time(QUERIES, 3, search({ weights: { dense: 1, sparse: 0 } })),
    sparse: await time(QUERIES, 3, search({ weights: { dense: 0, sparse: 1 } })),
    fused: await time(QUERIES, 3, search({})),
  });
  const rrf = await time(QUERIES, 3, search({ fusion: 'rrf' }));
  log(`MemoryHybridIndex: searches done (rrf p50 ${rrf.p50.toFixed(1)} ms)`);

  // LangChain baselines: fewer queries where one query takes long.
  const slowQueries = n >= 50_000 ? 3 : 10;
  const vsQueries = n >= 50_000 ? 10 : 30;
  const table = new Map<string, number[]>();
  q.forEach((x) => table.set(x.text, Array.from(x.dense)));
  const embeddings = new LookupEmbeddings(table);

  before = await usedBytes();
  t = performance.now();
  const vectors: number[][] = new Array(n);
  for (let d = 0; d < n; d++) vectors[d] = Array.from(data.dense.subarray(d * DIM, (d + 1) * DIM));
  const convertSec = (performance.now() - t) / 1000;
  const docs = data.texts.map((text, d) => new Document({ pageContent: text, metadata: { d }, id: String(d) }));
  t = performance.now();
  const store = new MemoryVectorStore(embeddings);
  for (let start = 0; start < n; start += 1000) await store.addVectors(vectors.slice(start, start + 1000), docs.slice(start, start + 1000));
  const storeAddSec = (performance.now() - t) / 1000;
  const storeBytes = (await usedBytes()) - before;
  log(`MemoryVectorStore: added in ${storeAddSec.toFixed(2)} s (+${convertSec.toFixed(2)} s converting to number[])`);
  rows.push({
    system: 'LangChain MemoryVectorStore (dense)',
    docs: n,
    addDocsPerSec: n / storeAddSec,
    bytesPerDoc: storeBytes / n,
    dense: await time(vsQueries, 1, (i) => store.similaritySearchVectorWithScore(table.get(q[i % q.length]!.text)!, K)),
  });

  // Same top-10 as the exact dense leg (a sanity check of both).
  let agrees = true;
  for (let i = 0; i < Math.min(5, q.length); i++) {
    const ours = (await index.searchEncoded(q[i]!, { k: K, weights: { dense: 1, sparse: 0 } })).map((r) => r.id);
    const theirs = (await store.similaritySearchVectorWithScore(table.get(q[i]!.text)!, K)).map(([d]) => d.id);
    if (ours.join() !== theirs.join()) agrees = false;
  }

  const bm25 = BM25Retriever.fromDocuments(docs, { k: K });
  log('BM25Retriever…');
  rows.push({
    system: 'LangChain BM25Retriever (lexical)',
    docs: n,
    addDocsPerSec: null,
    bytesPerDoc: null,
    sparse: await time(slowQueries, 1, (i) => bm25.invoke(q[i % q.length]!.text)),
  });
  log('EnsembleRetriever…');
  const ensemble = new EnsembleRetriever({
    retrievers: [BM25Retriever.fromDocuments(docs, { k: 100 }), store.asRetriever(100)],
    weights: [0.5, 0.5],
  });
  rows.push({
    system: 'LangChain EnsembleRetriever (BM25 + MemoryVectorStore, RRF)',
    docs: n,
    addDocsPerSec: null,
    bytesPerDoc: null,
    fused: await time(slowQueries, 1, (i) => ensemble.invoke(q[i % q.length]!.text)),
  });
  rows.push({ system: 'bge-m3-rag MemoryHybridIndex, fusion: rrf', docs: n, addDocsPerSec: null, bytesPerDoc: null, fused: rrf });
  // Keeps the generated data alive to the end: were it collected inside a memory window, that
  // window's growth would be understated by the data's size.
  log(`done (${data.dense.length / DIM} documents, ${data.sparse.length} sparse vectors)`);
  return { rows, denseTop10Agrees: agrees };
}

// --- report ---------------------------------------------------------------------------------

const fmtMs = (l?: Latency) => (l ? `${l.p50.toFixed(1)} / ${l.p95.toFixed(1)} (n=${l.n})` : '—');
const fmtNum = (x: number | null, digits = 0) => (x === null ? '—' : x.toLocaleString('en-US', { maximumFractionDigits: digits }));

async function main() {
  const started = new Date();
  const all: Row[] = [];
  const checks: string[] = [];
  for (const [i, n] of SIZES.entries()) {
    const { rows, denseTop10Agrees } = await benchSize(n, Number(args.seed) + i);
    all.push(...rows);
    checks.push(`${n.toLocaleString('en-US')} docs: dense top-10 identical to MemoryVectorStore's on 5 queries: ${denseTop10Agrees ? 'yes' : 'NO'}`);
    const ours = rows[0]!;
    const store = rows[1]!;
    const speedup = store.dense!.p50 / ours.dense!.p50;
    checks.push(`${n.toLocaleString('en-US')} docs: dense-only p50 ${speedup.toFixed(1)}x faster than MemoryVectorStore; fused top-10 p50 ${ours.fused!.p50.toFixed(1)} ms`);
    if (n === 100_000) {
      checks.push(`target fused top-10 p50 < 60 ms at 100k: ${ours.fused!.p50 < 60 ? 'MET' : 'MISSED'} (${ours.fused!.p50.toFixed(1)} ms)`);
      checks.push(`target dense-only >= 5x faster than MemoryVectorStore at 100k: ${speedup >= 5 ? 'MET' : 'MISSED'} (${speedup.toFixed(1)}x)`);
    }
  }
  const load = loadavg().map((x) => x.toFixed(2)).join(' / ');
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GB, Node ${process.version}`;
  const lines = [
    `| system | docs | add (docs/s) | memory/doc | dense p50 / p95 ms | sparse p50 / p95 ms | fused p50 / p95 ms |`,
    `| --- | ---: | ---: | ---: | --- | --- | --- |`,
    ...all.map(
      (r) =>
        `| ${r.system} | ${r.docs.toLocaleString('en-US')} | ${fmtNum(r.addDocsPerSec)} | ${r.bytesPerDoc === null ? '—' : `${(r.bytesPerDoc / 1024).toFixed(1)} KiB`} | ${fmtMs(r.dense)} | ${fmtMs(r.sparse)} | ${fmtMs(r.fused)} |`,
    ),
  ];
  const md = [
    `# Hybrid retrieval benchmark (${started.toISOString()})`,
    '',
    `Machine: ${machine}. Shared with other work while measured (load average at the end ${load} over 1/5/15 min), so numbers can be noisy.`,
    `memory/doc: growth of heap + external memory while the documents were added, over the document count (the texts themselves are shared with the generator and not counted; MemoryVectorStore includes the number[] copies of the vectors it needs). add (docs/s) for MemoryVectorStore is only addVectors, which stores references.`,
    `Data: ${DIM}-d unit vectors; 30–300 tokens per document, Zipf(1) over ${VOCAB.toLocaleString('en-US')} ids; top-${K}; ${QUERIES} queries for bge-m3-rag, fewer for the slow baselines (n per cell).`,
    `"fused" is the default weighted fusion (dense 1, sparse 0.3; 100 candidates per leg, exact rescoring) for MemoryHybridIndex and RRF of BM25 + MemoryVectorStore (100 each) for EnsembleRetriever.`,
    '',
    ...lines,
    '',
    ...checks.map((c) => `- ${c}`),
    '',
  ].join('\n');
  console.log(md);
  mkdirSync(args.out, { recursive: true });
  writeFileSync(join(args.out, 'hybrid-latest.md'), md);
  writeFileSync(
    join(args.out, 'hybrid-latest.json'),
    `${JSON.stringify({ date: started.toISOString(), machine, loadavg: loadavg(), params: { sizes: SIZES, queries: QUERIES, dim: DIM, vocab: VOCAB, k: K, seed: Number(args.seed) }, rows: all, checks }, null, 2)}\n`,
  );
  if (!gc) console.error('note: run with node --expose-gc (npm run bench:hybrid does) for steadier memory numbers');
}

await main();
