/**
 * Fusion of the dense and sparse legs, and the checking of search options.
 *
 * - `'weighted'` (default): the BGE-M3 paper's hybrid score. The paper ranks by
 *   `w_dense·s_dense + w_sparse·s_lex` (dense 1, sparse 0.3 in its hybrid runs); this package reports
 *   that sum divided by the weight sum, `combineScores(...)['sparse+dense']` from `scores.ts`, so a
 *   hybrid score equals FlagEmbedding `compute_score(..., weights_for_different_modes=[wd, ws, ·])
 *   ['sparse+dense']` for the same pair. Dividing by a constant does not change the ranking.
 * - `'rrf'`: reciprocal rank fusion (Cormack et al. 2009), `Σ_leg w_leg / (k + rank_leg)` with
 *   `rank_leg` counted from 1 within the leg's candidate list and `k` = 60 by default; a leg whose
 *   list does not contain the document adds 0. With weights 1 this is plain RRF.
 */
import { BgeM3Error } from '../errors.js';
import { checkPositiveInteger, describeValue as describe } from '../shared/checks.js';
import { compareEntries } from './top-k.js';
import { DEFAULT_RERANK_WEIGHTS } from '../rerankers/m3-reranker.js';
import { checkModeWeights, combineScores, type ModeWeights } from '../scores.js';
import { checkFilter, compileFilter, type MetadataFilter } from './filter.js';
import type { HybridFilter, HybridFusion, HybridRerankOptions, HybridSearchOptions, HybridStoredDocument, HybridWeights } from './types.js';

/** The paper's hybrid weights (FlagEmbedding `research/BGE_M3` eval: `--dense_weight 1 --sparse_weight 0.3`). */
export const DEFAULT_WEIGHTED_WEIGHTS: Readonly<HybridWeights> = Object.freeze({ dense: 1, sparse: 0.3 });
/** Plain RRF: both legs count the same. */
export const DEFAULT_RRF_WEIGHTS: Readonly<HybridWeights> = Object.freeze({ dense: 1, sparse: 1 });

/** The weighted hybrid score of one document (see the module comment). */
export function weightedScore(dense: number, sparse: number, weights: HybridWeights): number {
  return combineScores(dense, sparse, 0, [weights.dense, weights.sparse, 0])['sparse+dense'];
}

/**
 * The RRF score of one document: `Σ weights[i] / (k + ranks[i])` over the legs whose candidate
 * list holds it (`ranks[i]` from 1; `undefined` = not in that list).
 */
export function rrfScore(ranks: readonly (number | undefined)[], weights: readonly number[], k: number): number {
  let s = 0;
  for (let i = 0; i < ranks.length; i++) {
    const r = ranks[i];
    if (r !== undefined) s += weights[i]! / (k + r);
  }
  return s;
}

/** Search options after defaults and checks. */
export interface ResolvedSearchOptions {
  k: number;
  candidates: number;
  fusion: HybridFusion;
  weights: HybridWeights;
  rrfK: number;
  /** The filter as a predicate on stored documents (what the in-memory index applies); undefined = no filter. */
  filter: ((doc: HybridStoredDocument) => boolean) | undefined;
  /**
   * The filter in declarative form (validated, snapshotted at resolve time), for backends that
   * translate it (e.g. to SQL with `filterToSql`); undefined when there is no filter or it is a
   * function. Use {@link requireDeclarativeFilter} to get it and refuse function filters.
   */
  declarativeFilter: MetadataFilter | undefined;
  rerank: { topN: number; weights: ModeWeights } | undefined;
}

/** Applies defaults and rejects bad values with a message naming the option. */
export function resolveSearchOptions(options: HybridSearchOptions = {}): ResolvedSearchOptions {
  if (options === null || typeof options !== 'object') {
    throw new BgeM3Error('INVALID_ARGUMENT', `search options must be an object such as { k: 10 }; got ${describe(options)}.`);
  }
  const k = checkPositiveInteger(options.k ?? 10, 'k');
  const candidates = Math.max(checkPositiveInteger(options.candidates ?? 100, 'candidates'), k);
  const fusion = options.fusion ?? 'weighted';
  if (fusion !== 'weighted' && fusion !== 'rrf') {
    throw new BgeM3Error('INVALID_ARGUMENT', `fusion must be 'weighted' (the BGE-M3 paper's weighted sum) or 'rrf' (reciprocal rank fusion); got ${describe(fusion)}.`);
  }
  const defaults = fusion === 'rrf' ? DEFAULT_RRF_WEIGHTS : DEFAULT_WEIGHTED_WEIGHTS;
  const given = options.weights ?? {};
  if (given === null || typeof given !== 'object') {
    throw new BgeM3Error('INVALID_ARGUMENT', `weights must be an object { dense, sparse }, e.g. { dense: 1, sparse: 0.3 }; got ${describe(given)}.`);
  }
  const weights = { dense: given.dense ?? defaults.dense, sparse: given.sparse ?? defaults.sparse };
  for (const leg of ['dense', 'sparse'] as const) {
    const w = weights[leg];
    if (typeof w !== 'number' || !Number.isFinite(w) || w < 0) {
      throw new BgeM3Error('INVALID_ARGUMENT', `weights.${leg} must be a finite number ≥ 0 (0 switches the leg off); got ${describe(w)}.`);
    }
  }
  if (weights.dense + weights.sparse === 0) {
    throw new BgeM3Error('INVALID_ARGUMENT', `weights.dense and weights.sparse are both 0: at least one leg must count. Use { dense: 1, sparse: 0 } for dense-only search.`);
  }
  const rrfK = options.rrfK ?? 60;
  if (typeof rrfK !== 'number' || !Number.isFinite(rrfK) || rrfK < 0) {
    throw new BgeM3Error('INVALID_ARGUMENT', `rrfK must be a finite number ≥ 0 (60 is the usual value); got ${describe(rrfK)}.`);
  }
  const { predicate, declarative } = resolveFilter(options.filter);
  return { k, candidates, fusion, weights, rrfK, filter: predicate, declarativeFilter: declarative, rerank: resolveRerank(options.rerank, k) };
}

function resolveRerank(rerank: HybridRerankOptions | boolean | undefined, k: number): ResolvedSearchOptions['rerank'] {
  if (rerank === undefined || rerank === false) return undefined;
  const given: HybridRerankOptions = rerank === true ? {} : rerank;
  if (given === null || typeof given !== 'object') {
    throw new BgeM3Error('INVALID_ARGUMENT', `rerank must be true or { topN?, weights? }; got ${describe(given)}.`);
  }
  const topN = checkPositiveInteger(given.topN ?? Math.max(k, 20), 'rerank.topN');
  const weights = checkModeWeights([...(given.weights ?? DEFAULT_RERANK_WEIGHTS)], 'rerank.weights');
  return { topN, weights };
}

function resolveFilter(filter: HybridFilter | undefined): { predicate: ResolvedSearchOptions['filter']; declarative: MetadataFilter | undefined } {
  if (filter === undefined || filter === null) return { predicate: undefined, declarative: undefined };
  if (typeof filter === 'function') return { predicate: filter, declarative: undefined };
  if (typeof filter !== 'object' || Array.isArray(filter)) {
    throw new BgeM3Error('INVALID_ARGUMENT', `filter must be a function (doc) => boolean or a metadata filter object such as { lang: 'de' } or { year: { $gte: 2020 } }; got ${describe(filter)}.`);
  }
  // A snapshot: later changes to the caller's object do not change a search already resolved.
  const declarative = structuredClone(checkFilter(filter, 'filter'));
  const matches = compileFilter(declarative);
  return { predicate: (doc) => matches(doc.metadata), declarative };
}

/**
 * For backends that evaluate filters themselves (e.g. in SQL): the search's declarative filter, or
 * undefined if it has none. A function filter cannot be translated, so it is refused with a
 * `BgeM3Error('INVALID_ARGUMENT')` naming the backend.
 */
export function requireDeclarativeFilter(opts: ResolvedSearchOptions, backendName: string): MetadataFilter | undefined {
  if (opts.filter !== undefined && opts.declarativeFilter === undefined) {
    throw new BgeM3Error(
      'INVALID_ARGUMENT',
      `${backendName}: filter is a function, which only an in-memory index can run; pass a declarative metadata filter instead, e.g. { lang: 'de' }, { year: { $gte: 2020 } } or { $or: [{ tag: 'a' }, { tag: 'b' }] }.`,
    );
  }
  return opts.declarativeFilter;
}

/** A document from either leg of a search, with its exact scores and its 1-based rank in each leg it came from. */
export interface FusionCandidate {
  dense: number;
  sparse: number;
  denseRank?: number;
  sparseRank?: number;
  /** Insertion order: breaks score ties (earlier first). */
  row: number;
}

/**
 * The union of both legs' candidates, scored by the search's fusion (`weighted`: the exact
 * weighted sum; `rrf`: reciprocal ranks) and sorted best first, ties in insertion order. Every
 * backend fuses through this one function, so they rank identically.
 */
export function fuseCandidates<T extends FusionCandidate>(candidates: T[], opts: ResolvedSearchOptions): (T & { score: number })[] {
  const { weights } = opts;
  const scored = candidates.map((c) =>
    Object.assign(c, {
      score:
        opts.fusion === 'rrf'
          ? rrfScore([c.denseRank, c.sparseRank], [weights.dense, weights.sparse], opts.rrfK)
          : weightedScore(c.dense, c.sparse, weights),
    }),
  );
  return scored.sort(compareEntries);
}
