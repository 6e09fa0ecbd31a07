/**
 * `BgeM3HybridRetriever` for LangChain.js: a `BaseRetriever` over any `HybridIndex` (dense + sparse
 * candidates, fused exactly; optional M3 re-ranking). Thin: the index does all the work; this class
 * only turns results into `Document`s with their scores in `metadata`. Search options given per
 * call in `invoke(query, { k, filter, signal, timeout, … })` override the retriever's for that call.
 */
import type { CallbackManagerForRetrieverRun } from '@langchain/core/callbacks/manager';
import { Document, type DocumentInterface } from '@langchain/core/documents';
import { BaseRetriever, type BaseRetrieverInput } from '@langchain/core/retrievers';
import type { RunnableConfig } from '@langchain/core/runnables';
import { BgeM3Error } from '../errors.js';
import { describeValue as describe } from '../shared/checks.js';
import { resolveSearchOptions } from '../stores/fusion.js';
import { MemoryHybridIndex, type MemoryHybridIndexOptions } from '../stores/memory/memory-hybrid-index.js';
import type { HybridAddOptions, HybridIndex, HybridSearchOptions, HybridSearchResult } from '../stores/types.js';
import { invokeRetriever, pickDefined } from './langchain-invoke.js';

/** Search options a retriever applies to every query. */
export type BgeM3HybridSearchFields = Omit<HybridSearchOptions, 'signal'>;

export interface BgeM3HybridRetrieverParams extends BaseRetrieverInput, BgeM3HybridSearchFields {
  /** The index to search (e.g. a `MemoryHybridIndex`). */
  index: HybridIndex;
}

/**
 * Per-call options of `invoke` (and of `batch`, `stream`, or a chain's config, which LangChain passes
 * down): LangChain's `RunnableConfig` (`signal`, `timeout`, callbacks, …) plus any search option,
 * which replaces the retriever's for this call (a per-call `filter` replaces the retriever's filter).
 */
export interface BgeM3HybridRetrieverCallOptions extends RunnableConfig, BgeM3HybridSearchFields {}

const SEARCH_KEYS = ['k', 'candidates', 'fusion', 'weights', 'rrfK', 'filter', 'rerank'] as const;

/** Options of {@link BgeM3HybridRetriever.fromDocuments}: the index's, the retriever's, and `add`'s. */
export interface BgeM3HybridRetrieverFromDocumentsOptions extends MemoryHybridIndexOptions, BaseRetrieverInput, BgeM3HybridSearchFields {
  /** Batching and progress while the documents are encoded. */
  addOptions?: HybridAddOptions;
}

/**
 * Scores this retriever adds to each document's metadata (next to the document's own metadata).
 * Names match the `BgeM3Reranker` compressor's, which overwrites the shared ones when it runs after.
 */
export interface BgeM3HybridMetadata {
  /** The fused first-stage score (weighted or RRF). */
  hybridScore: number;
  /** Dense inner product. */
  denseScore: number;
  /** Lexical matching score. */
  sparseScore: number;
  /** With `rerank`: the reranker's `'colbert+sparse+dense'` score, which orders the results. */
  relevanceScore?: number;
  /** With `rerank`: the ColBERT MaxSim score. */
  colbertScore?: number;
}

export class BgeM3HybridRetriever extends BaseRetriever {
  static override lc_name(): string {
    return 'BgeM3HybridRetriever';
  }

  lc_namespace = ['bge_m3_rag', 'retrievers', 'hybrid'];

  readonly index: HybridIndex;
  /** Options passed to `index.search` for every query. */
  readonly searchOptions: BgeM3HybridSearchFields;

  constructor(fields: BgeM3HybridRetrieverParams) {
    super(fields);
    if (fields === null || typeof fields !== 'object' || !isHybridIndex(fields.index)) {
      throw new BgeM3Error(
        'INVALID_ARGUMENT',
        `BgeM3HybridRetriever: the index option must be a HybridIndex (e.g. new MemoryHybridIndex({ model })); got ${describe(fields?.index)}. Or use BgeM3HybridRetriever.fromDocuments(docs, { model }).`,
      );
    }
    this.index = fields.index;
    const { k, candidates, fusion, weights, rrfK, filter, rerank } = fields;
    this.searchOptions = { k, candidates, fusion, weights, rrfK, filter, rerank };
    resolveSearchOptions(this.searchOptions); // bad options fail here, not at the first query
  }

  /**
   * Builds a `MemoryHybridIndex` over LangChain documents (`pageContent` is encoded; `id` and
   * `metadata` are kept) and returns a retriever over it.
   */
  static async fromDocuments(docs: DocumentInterface[], options: BgeM3HybridRetrieverFromDocumentsOptions = {}): Promise<BgeM3HybridRetriever> {
    if (!Array.isArray(docs)) {
      throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3HybridRetriever.fromDocuments expects an array of Documents; got ${describe(docs)}.`);
    }
    const { k, candidates, fusion, weights, rrfK, filter, rerank, addOptions, callbacks, tags, metadata, verbose, ...indexOptions } = options;
    const index = new MemoryHybridIndex(indexOptions);
    await index.add(
      docs.map((doc, i) => {
        if (typeof doc?.pageContent !== 'string') {
          throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3HybridRetriever.fromDocuments: docs[${i}].pageContent must be a string; got ${describe(doc?.pageContent)}.`);
        }
        return { id: doc.id || undefined, text: doc.pageContent, metadata: doc.metadata };
      }),
      addOptions,
    );
    return new BgeM3HybridRetriever({ index, k, candidates, fusion, weights, rrfK, filter, rerank, callbacks, tags, metadata, verbose });
  }

  /**
   * Retrieves with per-call options: `k`, `filter` and the other search options override the
   * retriever's for this call; `signal` / `timeout` abort it (the promise rejects at once with
   * LangChain's abort error, the encoder stops at its next batch, and the model stays usable).
   */
  override invoke(input: string, options?: BgeM3HybridRetrieverCallOptions): Promise<DocumentInterface[]> {
    return invokeRetriever(this, input, options, (query, config) => this.search(query, config));
  }

  override async _getRelevantDocuments(query: string, _runManager?: CallbackManagerForRetrieverRun): Promise<Document[]> {
    return this.search(query, {});
  }

  private async search(query: string, config: BgeM3HybridRetrieverCallOptions): Promise<Document[]> {
    const options: HybridSearchOptions = { ...this.searchOptions, ...pickDefined(config, SEARCH_KEYS), signal: config.signal };
    const results = await this.index.search(query, options);
    return results.map(toDocument);
  }
}

/** A search result as a LangChain `Document`: id, text, and its metadata with the scores added. */
export function toDocument(r: HybridSearchResult): Document {
  const scores: BgeM3HybridMetadata = { hybridScore: r.fusedScore ?? r.score, denseScore: r.dense, sparseScore: r.sparse };
  if (r.colbert !== undefined) {
    scores.relevanceScore = r.score;
    scores.colbertScore = r.colbert;
  }
  return new Document({ pageContent: r.text, metadata: { ...r.metadata, ...scores }, id: r.id });
}

function isHybridIndex(value: unknown): value is HybridIndex {
  return typeof value === 'object' && value !== null && typeof (value as HybridIndex).search === 'function' && typeof (value as HybridIndex).add === 'function';
}
