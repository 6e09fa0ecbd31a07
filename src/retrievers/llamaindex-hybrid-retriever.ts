/**
 * `BgeM3HybridRetriever` for LlamaIndex.TS: a `BaseRetriever` over any `HybridIndex`, returning
 * `NodeWithScore` (usable in `RetrieverQueryEngine`, e.g. followed by the `BgeM3Rerank`
 * postprocessor). Thin: the index does all the work.
 */
import type { QueryBundle } from '@llamaindex/core/query-engine';
import type { MetadataFilters } from '@llamaindex/core/vector-store';
import { BaseRetriever } from '@llamaindex/core/retriever';
import { MetadataMode, TextNode, type BaseNode, type NodeWithScore } from '@llamaindex/core/schema';
import { extractText } from '@llamaindex/core/utils';
import { BgeM3Error } from '../errors.js';
import { describeValue as describe } from '../shared/checks.js';
import { resolveSearchOptions } from '../stores/fusion.js';
import { MemoryHybridIndex, type MemoryHybridIndexOptions } from '../stores/memory/memory-hybrid-index.js';
import type { HybridAddOptions, HybridFilter, HybridIndex, HybridSearchOptions, HybridSearchResult } from '../stores/types.js';
import { fromLlamaIndexFilters, isLlamaIndexFilters } from './llamaindex-filters.js';

/**
 * Search options a retriever applies to every query; `similarityTopK` is LlamaIndex's name for `k`.
 * Filters: `filter` (a declarative metadata filter, a function for in-memory indexes, or LlamaIndex
 * `MetadataFilters`) or `filters` (LlamaIndex `MetadataFilters`, translated as by the vector store;
 * an operator the filter language cannot express is an error). Give one of the two.
 */
export type BgeM3HybridSearchFields = Omit<HybridSearchOptions, 'signal' | 'filter'> & {
  similarityTopK?: number;
  filter?: HybridFilter | MetadataFilters;
  filters?: MetadataFilters;
};

export interface BgeM3HybridRetrieverOptions extends BgeM3HybridSearchFields {
  /** The index to search (e.g. a `MemoryHybridIndex`). */
  index: HybridIndex;
}

/** Options of {@link BgeM3HybridRetriever.fromDocuments}. */
export interface BgeM3HybridRetrieverFromDocumentsOptions extends MemoryHybridIndexOptions, BgeM3HybridSearchFields {
  /** Batching and progress while the nodes are encoded. */
  addOptions?: HybridAddOptions;
}

/**
 * Metadata keys this retriever adds to each node (`hybridScore`, `denseScore`, `sparseScore`, and
 * with `rerank` `relevanceScore`, `colbertScore`). They are excluded from the text the embedding
 * and the LLM see (`MetadataMode.EMBED` / `LLM`).
 */
export const HYBRID_SCORE_KEYS = ['hybridScore', 'denseScore', 'sparseScore', 'relevanceScore', 'colbertScore'];

export class BgeM3HybridRetriever extends BaseRetriever {
  readonly index: HybridIndex;
  /** Options passed to `index.search` for every query. */
  readonly searchOptions: Omit<HybridSearchOptions, 'signal'>;

  constructor(options: BgeM3HybridRetrieverOptions) {
    super();
    if (options === null || typeof options !== 'object' || !isHybridIndex(options.index)) {
      throw new BgeM3Error(
        'INVALID_ARGUMENT',
        `BgeM3HybridRetriever: the index option must be a HybridIndex (e.g. new MemoryHybridIndex({ model })); got ${describe(options?.index)}. Or use BgeM3HybridRetriever.fromDocuments(nodes, { model }).`,
      );
    }
    this.index = options.index;
    this.searchOptions = searchFields(options);
    resolveSearchOptions(this.searchOptions); // bad options fail here, not at the first query
  }

  /**
   * Builds a `MemoryHybridIndex` over LlamaIndex nodes or documents (`getContent(MetadataMode.NONE)`
   * is encoded; `id_` and `metadata` are kept) and returns a retriever over it.
   */
  static async fromDocuments(nodes: BaseNode[], options: BgeM3HybridRetrieverFromDocumentsOptions = {}): Promise<BgeM3HybridRetriever> {
    if (!Array.isArray(nodes)) {
      throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3HybridRetriever.fromDocuments expects an array of nodes; got ${describe(nodes)}.`);
    }
    const { k, similarityTopK, candidates, fusion, weights, rrfK, filter, filters, rerank, addOptions, ...indexOptions } = options;
    const index = new MemoryHybridIndex(indexOptions);
    await index.add(
      nodes.map((node, i) => {
        // Duck-typed: LlamaIndex's ESM and CJS builds have different BaseNode classes.
        const text = typeof node?.getContent === 'function' ? node.getContent(MetadataMode.NONE) : undefined;
        if (typeof text !== 'string') {
          throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3HybridRetriever.fromDocuments: nodes[${i}] is not a node with text content; got ${describe(node)}.`);
        }
        return { id: node.id_, text, metadata: node.metadata };
      }),
      addOptions,
    );
    return new BgeM3HybridRetriever({ index, k, similarityTopK, candidates, fusion, weights, rrfK, filter, filters, rerank });
  }

  async _retrieve(params: QueryBundle): Promise<NodeWithScore[]> {
    const query = extractText(params.query);
    const results = await this.index.search(query, this.searchOptions);
    return results.map(toNodeWithScore);
  }
}

function searchFields(options: BgeM3HybridSearchFields): Omit<HybridSearchOptions, 'signal'> {
  const { k, similarityTopK, candidates, fusion, weights, rrfK, filter, filters, rerank } = options;
  if (k !== undefined && similarityTopK !== undefined && k !== similarityTopK) {
    throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3HybridRetriever: k (${k}) and similarityTopK (${similarityTopK}) are the same option; give one.`);
  }
  if (filter !== undefined && filters !== undefined) {
    throw new BgeM3Error('INVALID_ARGUMENT', 'BgeM3HybridRetriever: filter and filters are both given; give one (filters takes LlamaIndex MetadataFilters, filter a declarative metadata filter or MetadataFilters).');
  }
  // LlamaIndex MetadataFilters ({ filters: [{ key, value, operator }], condition }) would otherwise
  // read as an equality filter on a metadata field named "filters" and match nothing.
  const given = filters ?? filter;
  const resolved: HybridFilter | undefined = filters !== undefined || isLlamaIndexFilters(given) ? fromLlamaIndexFilters(given as MetadataFilters, filters !== undefined ? 'filters' : 'filter') : (given as HybridFilter | undefined);
  return { k: similarityTopK ?? k, candidates, fusion, weights, rrfK, filter: resolved, rerank };
}

function toNodeWithScore(r: HybridSearchResult): NodeWithScore {
  const scores: Record<string, number> = { hybridScore: r.fusedScore ?? r.score, denseScore: r.dense, sparseScore: r.sparse };
  if (r.colbert !== undefined) {
    scores.relevanceScore = r.score;
    scores.colbertScore = r.colbert;
  }
  const node = new TextNode({
    id_: r.id,
    text: r.text,
    metadata: { ...r.metadata, ...scores },
    excludedEmbedMetadataKeys: [...HYBRID_SCORE_KEYS],
    excludedLlmMetadataKeys: [...HYBRID_SCORE_KEYS],
  });
  return { node, score: r.score };
}

function isHybridIndex(value: unknown): value is HybridIndex {
  return typeof value === 'object' && value !== null && typeof (value as HybridIndex).search === 'function' && typeof (value as HybridIndex).add === 'function';
}
