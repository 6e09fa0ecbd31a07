/**
 * The framework-free hybrid retrieval contract: `HybridIndex` and the shapes it takes and returns.
 * The LangChain and LlamaIndex retrievers are written against this interface only, so any index
 * that implements it (in memory, or a future database-backed one) plugs into both frameworks.
 */
import type { LexicalWeights, ModeWeights } from '../scores.js';
import type { MetadataFilter } from './filter.js';

export type { MetadataFilter } from './filter.js';
export type { MultiVectorStorage } from './multi-vectors.js';

/** Free-form document metadata (kept as given; saved as JSON, so keep it JSON-serializable). */
export type HybridMetadata = Record<string, unknown>;

/** A document to index. */
export interface HybridDocumentInput {
  /** Stable id. Default: a random UUID. Adding an id that is already indexed replaces that document. */
  id?: string;
  /** The text that is encoded and returned. */
  text: string;
  /** Returned with the document and visible to `filter`. */
  metadata?: HybridMetadata;
}

/**
 * A sparse vector: FlagEmbedding's lexical weights (`{ "<token id>": weight }`) or the compact form
 * `{ indices, values }` (token ids and their weights, same length). Weights must be finite and
 * non-negative (BGE-M3's are ReLU outputs); zeros are dropped.
 */
export type SparseVectorInput = LexicalWeights | { indices: ArrayLike<number>; values: ArrayLike<number> };

/** A document whose encodings were computed elsewhere (e.g. FlagEmbedding in Python, or a cache). */
export interface HybridEncodedDocument extends HybridDocumentInput {
  /** The dense vector (`dim` numbers; BGE-M3's are unit length, so inner product = cosine). */
  dense: ArrayLike<number>;
  /** The lexical weights. */
  sparse: SparseVectorInput;
  /**
   * The document's ColBERT vectors (`tokens - 1` rows of `dim` values, as `encode` returns them in
   * `colbertVecs`), kept when the index stores multi-vectors (`multiVectors: 'fp16' | 'int8'`) and
   * ignored otherwise. Without them the rerank stage encodes this document's text.
   */
  colbert?: readonly ArrayLike<number>[];
}

/** A query whose encodings were computed elsewhere (see {@link HybridEncodedDocument}). */
export interface HybridEncodedQuery {
  dense: ArrayLike<number>;
  sparse: SparseVectorInput;
}

/** A document as the index holds it (what `filter` sees). */
export interface HybridStoredDocument {
  readonly id: string;
  readonly text: string;
  readonly metadata: HybridMetadata;
}

/**
 * Which documents a search may return:
 * - a declarative {@link MetadataFilter} over the metadata (`{ lang: 'de' }`,
 *   `{ 'author.name': 'Ada', year: { $gte: 2020 }, tags: { $in: ['ml', 'ir'] } }`, `$and`/`$or`/`$not`;
 *   see `stores/filter.ts` for the exact semantics), which every backend evaluates identically; or
 * - a predicate on the stored document (read it, do not modify it), for in-memory indexes only
 *   (a database-backed index refuses it).
 */
export type HybridFilter = ((doc: HybridStoredDocument) => boolean) | MetadataFilter;

/** How the dense and sparse candidate lists are merged. */
export type HybridFusion = 'weighted' | 'rrf';

/** Per-leg weights. */
export interface HybridWeights {
  dense: number;
  sparse: number;
}

/** The optional third stage: the M3 reranker (dense + sparse + ColBERT) over the fused top candidates. */
export interface HybridRerankOptions {
  /** How many fused candidates are re-ranked (the `k` best of them are returned). Default `max(k, 20)`. */
  topN?: number;
  /** `[dense, sparse, colbert]` weights of the reranker's score. Default `[0.4, 0.2, 0.4]` (the model card's). */
  weights?: ModeWeights | readonly [number, number, number];
}

/** Options of {@link HybridIndex.search}. */
export interface HybridSearchOptions {
  /** Results to return. Default 10. */
  k?: number;
  /** Candidates taken from each leg (dense, sparse) before fusion; raised to `k` if smaller. Default 100. */
  candidates?: number;
  /**
   * `'weighted'` (default, the BGE-M3 paper's method): every candidate of either leg is rescored
   * exactly with `(wd·dense + ws·sparse) / (wd + ws)`, i.e. the paper's weighted sum divided by the
   * weight sum, which is FlagEmbedding `compute_score`'s `'sparse+dense'` (same ranking as the raw sum).
   * `'rrf'`: reciprocal rank fusion, `Σ_leg w_leg / (rrfK + rank_leg)` with ranks from 1 within each
   * leg's candidate list (a leg that did not return the document adds 0).
   */
  fusion?: HybridFusion;
  /**
   * Leg weights. Default `{ dense: 1, sparse: 0.3 }` for `'weighted'` (the paper's) and
   * `{ dense: 1, sparse: 1 }` for `'rrf'` (plain RRF). A weight of 0 skips that leg's candidates
   * (`{ dense: 1, sparse: 0 }` is dense-only search); both scores are still reported.
   */
  weights?: Partial<HybridWeights>;
  /** RRF constant. Default 60 (Cormack et al.; Elasticsearch, OpenSearch, Milvus, LangChain). */
  rrfK?: number;
  /** Only documents passing the filter are candidates (applied before `candidates` are taken). */
  filter?: HybridFilter;
  /** Re-rank the fused top candidates with the M3 reranker (needs the index's model). */
  rerank?: HybridRerankOptions | boolean;
  /** Aborts the search between stages. */
  signal?: AbortSignal;
}

/** One search result. */
export interface HybridSearchResult {
  id: string;
  text: string;
  metadata: HybridMetadata;
  /** The score the results are ordered by: fused score, or the reranker's relevance score when re-ranked. */
  score: number;
  /** Inner product of the dense vectors (exact). */
  dense: number;
  /** Lexical matching score: sum over shared tokens of `w_query · w_doc` (exact). */
  sparse: number;
  /** ColBERT MaxSim score, present when re-ranked. */
  colbert?: number;
  /** The first-stage fused score, present when re-ranked (then `score` is the reranker's). */
  fusedScore?: number;
  /**
   * Where the ColBERT vectors of a re-ranked result came from: `'stored'` (the index keeps them,
   * `multiVectors`; no passage encode) or `'encoded'` (the text was encoded at query time).
   */
  colbertSource?: ColbertSource;
}

/** See {@link HybridSearchResult.colbertSource}. */
export type ColbertSource = 'stored' | 'encoded';

/** A query's three BGE-M3 outputs, for scoring stored documents. */
export interface M3QueryEncoding {
  dense: ArrayLike<number>;
  sparse: SparseVectorInput;
  /** The query's ColBERT rows. */
  colbert: readonly ArrayLike<number>[];
}

/** A stored document's three scores against a query (FlagEmbedding `compute_score`'s parts). */
export interface StoredPairScores {
  dense: number;
  sparse: number;
  colbert: number;
}

/**
 * An index that keeps its documents' ColBERT vectors (`multiVectors`): it scores stored documents
 * against a query without encoding them. `M3Reranker` (and the LangChain / LlamaIndex rerankers)
 * take one as `index`, so a retriever -> reranker chain pays one query encode.
 */
export interface MultiVectorSource {
  /**
   * Dense, sparse and ColBERT scores of the documents with these ids, in order; `undefined` for an
   * id that is not indexed or has no stored vectors (the caller encodes that text instead).
   */
  scoreStored(query: M3QueryEncoding, ids: readonly string[], signal?: AbortSignal): Promise<(StoredPairScores | undefined)[]>;
}

/** Progress of a long index operation. */
export interface HybridProgress {
  phase: 'encode' | 'add' | 'save' | 'load';
  /** Texts encoded, rows written to a database, or bytes written/read. */
  done: number;
  total: number;
}

/** Options of {@link HybridIndex.add}. */
export interface HybridAddOptions {
  /** Texts per encoder batch. Default: the engine's (256). */
  batchSize?: number;
  /** Called as texts are encoded. */
  onProgress?: (progress: HybridProgress) => void;
  /** Aborts encoding between batches; nothing is added then. */
  signal?: AbortSignal;
}

/**
 * A searchable collection of documents with BGE-M3 dense and sparse encodings. The retrievers in
 * `bge-m3-rag/langchain` and `bge-m3-rag/llamaindex` accept any implementation.
 */
export interface HybridIndex {
  /** Number of documents (deleted ones excluded). Asynchronous: a shared database counts on the server. */
  count(): Promise<number>;
  /** Encodes and adds documents (all or nothing; an indexed id is replaced); returns their ids in input order. */
  add(docs: HybridDocumentInput[], options?: HybridAddOptions): Promise<string[]>;
  /** Adds documents with precomputed dense and sparse encodings (no model needed). */
  addEncoded(docs: HybridEncodedDocument[]): string[] | Promise<string[]>;
  /** Removes documents by id; unknown ids are ignored. Returns how many were removed. */
  delete(ids: string[]): Promise<number>;
  /** Hybrid search; results are ordered best first. */
  search(query: string, options?: HybridSearchOptions): Promise<HybridSearchResult[]>;
  /** Search with a precomputed query encoding (no model needed; no `rerank`). */
  searchEncoded(query: HybridEncodedQuery, options?: HybridSearchOptions): Promise<HybridSearchResult[]>;
  /** Present on indexes that can store multi-vectors: see {@link MultiVectorSource.scoreStored}. */
  scoreStored?: MultiVectorSource['scoreStored'];
}
