/**
 * The scoring math of BGE-M3, in one place (FlagEmbedding `M3Embedder`): every adapter, the hybrid
 * index and the reranker call these functions rather than re-deriving a formula.
 */
import { BgeM3Error } from './errors.js';

/** Lexical weights as FlagEmbedding returns them: decimal token id -> weight. */
export type LexicalWeights = Record<string, number>;

/** Inner product of two equal-length vectors (cosine for BGE-M3's normalized dense vectors). */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (b.length !== a.length) {
    throw new BgeM3Error('INVALID_ARGUMENT', `dot: vectors have different lengths (${a.length} and ${b.length}).`);
  }
  return dotAt(a, 0, b, 0, a.length);
}

/**
 * Inner product of `a[aOffset .. aOffset + n)` and `b[bOffset .. bOffset + n)`, unchecked: the one
 * kernel behind {@link dot} and the hybrid index's dense scan. Four independent accumulators: MaxSim
 * calls this millions of times per rerank, and breaking the dependency chain roughly doubles
 * throughput. Summation order differs from a plain loop only in the last bits of a double.
 */
export function dotAt(a: ArrayLike<number>, aOffset: number, b: ArrayLike<number>, bOffset: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    s0 += a[aOffset + i]! * b[bOffset + i]!;
    s1 += a[aOffset + i + 1]! * b[bOffset + i + 1]!;
    s2 += a[aOffset + i + 2]! * b[bOffset + i + 2]!;
    s3 += a[aOffset + i + 3]! * b[bOffset + i + 3]!;
  }
  for (; i < n; i++) s0 += a[aOffset + i]! * b[bOffset + i]!;
  return s0 + s1 + (s2 + s3);
}

/** Sum of squares of `v[offset .. offset + length)`. */
export function squaredNorm(v: ArrayLike<number>, offset = 0, length = v.length - offset): number {
  let s = 0;
  for (let i = offset; i < offset + length; i++) s += v[i]! * v[i]!;
  return s;
}

/** Scales a vector to unit L2 norm in place, like `F.normalize(x, dim=-1)` (norm clamped at 1e-12). */
export function normalizeInPlace(v: Float32Array, offset = 0, length = v.length - offset): Float32Array {
  let ss = 0;
  for (let i = offset; i < offset + length; i++) ss += v[i]! * v[i]!;
  const inv = 1 / Math.max(Math.sqrt(ss), 1e-12);
  for (let i = offset; i < offset + length; i++) v[i]! *= inv;
  return v;
}

/**
 * `compute_lexical_matching_score`: the sum over token ids present in both dicts of `w_a * w_b`.
 * Iterates over the smaller dict; the result does not depend on which one that is.
 */
export function lexicalMatchingScore(a: LexicalWeights, b: LexicalWeights): number {
  let small = a;
  let large = b;
  if (Object.keys(a).length > Object.keys(b).length) {
    small = b;
    large = a;
  }
  let score = 0;
  for (const id in small) {
    const w = large[id];
    if (w !== undefined) score += small[id]! * w;
  }
  return score;
}

/**
 * `colbert_score`: the mean over query vectors of the maximum dot product with any passage vector
 * (MaxSim). Both sides are lists of rows as `encode` returns them (padding already removed).
 */
export function colbertScore(query: readonly ArrayLike<number>[], passage: readonly ArrayLike<number>[]): number {
  if (query.length === 0) return 0;
  let total = 0;
  for (const q of query) {
    let best = -Infinity;
    for (const p of passage) {
      const s = dot(q, p);
      if (s > best) best = s;
    }
    // An empty passage has no vectors; FlagEmbedding would fail on max() of nothing. Score 0.
    total += best === -Infinity ? 0 : best;
  }
  return total / query.length;
}

/** The five outputs of `compute_score` for one pair. */
export interface M3PairScore {
  dense: number;
  sparse: number;
  colbert: number;
  'sparse+dense': number;
  'colbert+sparse+dense': number;
}

/** `[dense, sparse, colbert]` weights of `compute_score`. */
export type ModeWeights = readonly [dense: number, sparse: number, colbert: number];

/** Checks a `weightsForDifferentModes`-style option and returns it as a tuple. */
export function checkModeWeights(weights: readonly number[], option = 'weightsForDifferentModes'): ModeWeights {
  if (!Array.isArray(weights) || weights.length !== 3 || !weights.every((w) => typeof w === 'number' && Number.isFinite(w))) {
    throw new BgeM3Error(
      'INVALID_ARGUMENT',
      `${option} must be three finite numbers [dense, sparse, colbert], e.g. [0.4, 0.2, 0.4]; got ${JSON.stringify(weights)}.`,
    );
  }
  if (weights[0]! + weights[1]! + weights[2]! === 0) {
    throw new BgeM3Error(
      'INVALID_ARGUMENT',
      `${option} ${JSON.stringify(weights)}: 'colbert+sparse+dense' divides by w[0]+w[1]+w[2], so the weights may not sum to 0.`,
    );
  }
  return weights as unknown as ModeWeights;
}

/**
 * The weighted combinations of `compute_score`, divided by the weight sums as FlagEmbedding does
 * (with weights `[0, 0, w]`, ColBERT only, `'sparse+dense'` is 0/0 = NaN there as well):
 * `'sparse+dense' = (w1*sparse + w0*dense) / (w0 + w1)` and
 * `'colbert+sparse+dense' = (w0*dense + w1*sparse + w2*colbert) / (w0 + w1 + w2)`.
 */
export function combineScores(dense: number, sparse: number, colbert: number, weights: ModeWeights): M3PairScore {
  const [w0, w1, w2] = weights;
  return {
    dense,
    sparse,
    colbert,
    'sparse+dense': (sparse * w1 + dense * w0) / (w0 + w1),
    'colbert+sparse+dense': (colbert * w2 + sparse * w1 + dense * w0) / (w0 + w1 + w2),
  };
}
