/**
 * The third stage of a hybrid search, shared by every backend: the M3 reranker (dense + sparse +
 * ColBERT, FlagEmbedding's `compute_score`) over the fused top `topN`. One `M3Reranker` per weight
 * setting is kept, so its passage-encoding cache serves later searches. Candidates whose ColBERT
 * vectors the index stores (`multiVectors`) are scored from them (`colbertSource: 'stored'`, no
 * passage encode); the others are encoded (`'encoded'`).
 */
import type { BgeM3Model } from '../model/bge-m3-model.js';
import { M3Reranker } from '../rerankers/m3-reranker.js';
import type { ResolvedSearchOptions } from './fusion.js';
import type { TextEncoding } from '../rerankers/passage-cache.js';
import type { HybridSearchResult, MultiVectorSource } from './types.js';

export interface RerankStageOptions {
  /** Query tokens for the reranker (capped by the model's limit). */
  maxQueryLength: number;
  /** Passage tokens for the reranker (capped by the model's limit). */
  maxPassageLength: number;
  /** Texts per encode batch; the engine's default when undefined. */
  batchSize?: number;
  /** The index, when it can score candidates from stored multi-vectors. */
  source?: MultiVectorSource;
}

export class RerankStage {
  private readonly rerankers = new Map<string, M3Reranker>();

  constructor(private readonly options: RerankStageOptions) {}

  /**
   * Re-ranks the fused results' top `opts.rerank.topN` and returns the best `opts.k`.
   * `queryEncoding`: the query's three outputs, when the search already encoded them.
   */
  async rerank(model: BgeM3Model, query: string, fused: HybridSearchResult[], opts: ResolvedSearchOptions, signal?: AbortSignal, queryEncoding?: TextEncoding): Promise<HybridSearchResult[]> {
    const { topN, weights } = opts.rerank!;
    const top = fused.slice(0, topN);
    if (top.length === 0) return [];
    const key = weights.join(',');
    let reranker = this.rerankers.get(key);
    if (!reranker) {
      reranker = new M3Reranker({
        model,
        weights: [...weights] as [number, number, number],
        maxQueryLength: Math.min(this.options.maxQueryLength, model.maxPositions),
        maxPassageLength: Math.min(this.options.maxPassageLength, model.maxPositions),
        batchSize: this.options.batchSize,
        index: this.options.source,
      });
      this.rerankers.set(key, reranker);
    }
    const ranked = await reranker.rerank(
      query,
      top.map((r) => ({ text: r.text, id: r.id })),
      { topN: opts.k, signal, queryEncoding },
    );
    return ranked.map((r) => {
      const first = top[r.index]!;
      return { ...first, score: r.relevanceScore, dense: r.dense, sparse: r.sparse, colbert: r.colbert, fusedScore: first.score, colbertSource: r.colbertSource };
    });
  }
}
