/**
 * Test support for the hybrid index: seeded random corpora and a brute-force reference that scores
 * every document with the functions of `src/scores.ts` (never with the index's own code paths).
 */
import { combineScores, dot, lexicalMatchingScore, type LexicalWeights } from '../../src/scores.js';

/** A seeded PRNG (mulberry32), so failures are reproducible from the seed. */
export { mulberry32 as rng } from '../../bench/lib/prng.js';

export interface RefDoc {
  id: string;
  text: string;
  metadata: { group: number; n: number };
  dense: Float32Array;
  sparse: LexicalWeights;
}

/** A random sparse vector over `vocab` token ids, float32 weights (what the index stores). */
export function randomSparse(rand: () => number, vocab: number, maxNnz: number): LexicalWeights {
  const out: LexicalWeights = {};
  const nnz = Math.floor(rand() * (maxNnz + 1));
  for (let i = 0; i < nnz; i++) out[String(Math.floor(rand() * vocab))] = Math.fround(0.01 + rand() * 2);
  return out;
}

export function randomDense(rand: () => number, dim: number): Float32Array {
  const v = new Float32Array(dim);
  for (let i = 0; i < dim; i++) v[i] = rand() * 2 - 1;
  return v;
}

/** A corpus with some exact duplicates (to exercise tie-breaking by insertion order). */
export function randomCorpus(rand: () => number, n: number, dim: number, vocab: number, maxNnz: number, prefix = 'd'): RefDoc[] {
  const docs: RefDoc[] = [];
  for (let i = 0; i < n; i++) {
    const twin = i > 0 && rand() < 0.1 ? docs[Math.floor(rand() * i)]! : undefined;
    docs.push({
      id: `${prefix}${i}`,
      text: `text ${prefix}${i}`,
      metadata: { group: Math.floor(rand() * 3), n: i },
      dense: twin ? twin.dense.slice() : randomDense(rand, dim),
      sparse: twin ? { ...twin.sparse } : randomSparse(rand, vocab, maxNnz),
    });
  }
  return docs;
}

export interface RefQuery {
  dense: Float32Array;
  sparse: LexicalWeights;
}

export interface RefOptions {
  k: number;
  candidates: number;
  fusion: 'weighted' | 'rrf';
  weights: { dense: number; sparse: number };
  rrfK: number;
  filter?: (doc: RefDoc) => boolean;
}

export interface RefResult {
  id: string;
  score: number;
  dense: number;
  sparse: number;
}

/**
 * The reference: `docs` in insertion order. Each leg ranks every allowed document by its exact
 * score (`dot` / `lexicalMatchingScore`; the sparse leg only documents sharing a token), ties by
 * insertion order, and keeps the best `candidates`; the union is fused with `combineScores`
 * (weighted) or the RRF formula written out here.
 */
export function bruteForce(docs: RefDoc[], query: RefQuery, o: RefOptions): RefResult[] {
  const scored = docs
    .map((doc, row) => ({ doc, row, dense: dot(query.dense, doc.dense), sparse: lexicalMatchingScore(query.sparse, doc.sparse) }))
    .filter((x) => !o.filter || o.filter(x.doc));
  const byLeg = (key: 'dense' | 'sparse') =>
    scored
      .filter((x) => key === 'dense' || x.sparse > 0)
      .sort((a, b) => b[key] - a[key] || a.row - b.row)
      .slice(0, Math.max(o.candidates, o.k));
  const denseList = o.weights.dense > 0 ? byLeg('dense') : [];
  const sparseList = o.weights.sparse > 0 ? byLeg('sparse') : [];
  const union = new Map<number, (typeof scored)[number]>();
  for (const x of [...denseList, ...sparseList]) union.set(x.row, x);
  const results = [...union.values()].map((x) => {
    let score: number;
    if (o.fusion === 'weighted') {
      score = combineScores(x.dense, x.sparse, 0, [o.weights.dense, o.weights.sparse, 0])['sparse+dense'];
    } else {
      const dr = denseList.indexOf(x);
      const sr = sparseList.indexOf(x);
      score = (dr >= 0 ? o.weights.dense / (o.rrfK + dr + 1) : 0) + (sr >= 0 ? o.weights.sparse / (o.rrfK + sr + 1) : 0);
    }
    return { row: x.row, id: x.doc.id, score, dense: x.dense, sparse: x.sparse };
  });
  results.sort((a, b) => b.score - a.score || a.row - b.row);
  return results.slice(0, o.k).map(({ id, score, dense, sparse }) => ({ id, score, dense, sparse }));
}
