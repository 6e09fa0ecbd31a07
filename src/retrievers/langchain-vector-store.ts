/**
 * `BgeM3VectorStore`: a LangChain.js `VectorStore` over any `HybridIndex` (`MemoryHybridIndex` by
 * default, or `PgHybridIndex`), searching BGE-M3's dense and sparse outputs together.
 *
 * - The model is the `BgeM3Embeddings`' model. The store encodes documents and queries itself (dense
 *   and sparse in one encoder pass) and uses the index through `addEncoded` / `searchEncoded`, so
 *   an index built with or without a model both work; give it the same model the index was built with.
 * - Text searches (`similaritySearch`, `similaritySearchWithScore`, the retriever) are hybrid by
 *   default; `searchType: 'dense'` or `'sparse'` (on the store, per call, or on the retriever) ranks
 *   by one leg only (weights `{ dense: 1, sparse: 0 }` / `{ dense: 0, sparse: 1 }`).
 * - `similaritySearchVectorWithScore(vector)` is the dense leg alone.
 * - `addVectors` is refused: dense vectors alone cannot carry the sparse weights (use `addDocuments`).
 * - Filters are the declarative metadata filter language of `stores/filter.ts`.
 * - Each returned document's metadata gains `hybridScore`, `denseScore` and `sparseScore`.
 */
import type { CallbackManagerForRetrieverRun, Callbacks } from '@langchain/core/callbacks/manager';
import { Document, type DocumentInterface } from '@langchain/core/documents';
import type { BaseRetrieverInput } from '@langchain/core/retrievers';
import type { RunnableConfig } from '@langchain/core/runnables';
import { maximalMarginalRelevance } from '@langchain/core/utils/math';
import {
  VectorStore,
  VectorStoreRetriever,
  type MaxMarginalRelevanceSearchOptions,
  type VectorStoreRetrieverInput,
  type VectorStoreRetrieverMMRSearchKwargs,
} from '@langchain/core/vectorstores';
import type { BgeM3Embeddings } from '../embeddings/langchain-embeddings.js';
import { BgeM3Error } from '../errors.js';
import { checkPositiveInteger, describeValue as describe } from '../shared/checks.js';
import { resolveSearchOptions } from '../stores/fusion.js';
import { MemoryHybridIndex } from '../stores/memory/memory-hybrid-index.js';
import type { HybridEncodedDocument, HybridIndex, HybridMetadata, HybridProgress, HybridSearchOptions, MetadataFilter } from '../stores/types.js';
import { toDocument } from './langchain-hybrid-retriever.js';
import { invokeRetriever } from './langchain-invoke.js';
import { checkMode, deleteWhere, DENSE_ONLY, indexDim, isHybridIndex, modeOptions, StoreEncoder, type BgeM3SearchMode, type HybridModeOptions, type StoreEncodingOptions } from './store-support.js';

/** How a text search ranks: `'hybrid'` (default), `'dense'` or `'sparse'`. */
export type BgeM3VectorStoreSearchType = BgeM3SearchMode;

/** Options of the {@link BgeM3VectorStore} constructor, `fromDocuments` and `fromTexts`. */
export interface BgeM3VectorStoreArgs extends HybridModeOptions, StoreEncodingOptions {
  /** The index holding the documents. Default: a new `MemoryHybridIndex` with the embeddings' model. */
  index?: HybridIndex;
  /** Default ranking of text searches. Default `'hybrid'`. */
  searchType?: BgeM3VectorStoreSearchType;
}

/** Options of {@link BgeM3VectorStore.addDocuments}. */
export interface BgeM3AddDocumentOptions {
  /** Ids, one per document (default: each document's `id`, else a random UUID). An indexed id is replaced (upsert). */
  ids?: string[];
  /** Texts per encoder batch. */
  batchSize?: number;
  /** Called as texts are encoded. */
  onProgress?: (progress: HybridProgress) => void;
  /** Aborts encoding; nothing is added then. */
  signal?: AbortSignal;
}

/** Options of {@link BgeM3VectorStore.searchWithOptions}. */
export interface BgeM3VectorStoreSearchOptions {
  /** Results to return. Default 4 (LangChain's). */
  k?: number;
  filter?: MetadataFilter;
  /** This call's ranking. Default: the store's `searchType`. */
  searchType?: BgeM3VectorStoreSearchType;
  signal?: AbortSignal;
}

/** Options of {@link BgeM3VectorStore.maxMarginalRelevanceSearch}. */
export interface BgeM3MMRSearchOptions extends MaxMarginalRelevanceSearchOptions<MetadataFilter> {
  /** How the `fetchK` candidates are found. Default: the store's `searchType`. */
  searchType?: BgeM3VectorStoreSearchType;
  signal?: AbortSignal;
}

/** `searchType` of the store's retriever: LangChain's `'similarity'` (the store's default ranking) and `'mmr'`, or a ranking. */
export type BgeM3RetrieverSearchType = 'similarity' | 'mmr' | BgeM3VectorStoreSearchType;

export interface BgeM3VectorStoreRetrieverInput<V extends BgeM3VectorStore = BgeM3VectorStore> extends BaseRetrieverInput {
  vectorStore: V;
  /** Documents per query. Default 4 (LangChain's). */
  k?: number;
  filter?: MetadataFilter;
  /** Default `'similarity'` (the store's `searchType`). */
  searchType?: BgeM3RetrieverSearchType;
  /** `fetchK` and `lambda` for `'mmr'`. */
  searchKwargs?: VectorStoreRetrieverMMRSearchKwargs;
}

/** Per-call options of the store's retriever: LangChain's `RunnableConfig` plus these, which override the retriever's for the call. */
export interface BgeM3VectorStoreRetrieverCallOptions extends RunnableConfig {
  k?: number;
  filter?: MetadataFilter;
  searchType?: BgeM3RetrieverSearchType;
  fetchK?: number;
  lambda?: number;
}

const DEFAULT_K = 4;
const DEFAULT_FETCH_K = 20;

export class BgeM3VectorStore extends VectorStore {
  declare FilterType: MetadataFilter;
  declare embeddings: BgeM3Embeddings;

  readonly index: HybridIndex;
  /** Default ranking of text searches. */
  readonly searchType: BgeM3VectorStoreSearchType;
  /** Fusion settings of hybrid searches. */
  readonly hybridOptions: HybridModeOptions;
  private readonly encoder: StoreEncoder;

  _vectorstoreType(): string {
    return 'bge-m3';
  }

  /**
   * @param embeddings the `BgeM3Embeddings` whose model encodes documents and queries.
   * @param args `index` (default a new `MemoryHybridIndex` with that model), `searchType`
   *   (`'hybrid'`), hybrid fusion options and encoding lengths.
   */
  constructor(embeddings: BgeM3Embeddings, args: BgeM3VectorStoreArgs = {}) {
    if (embeddings === null || typeof embeddings !== 'object' || typeof (embeddings as Partial<BgeM3Embeddings>).getModel !== 'function') {
      throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3VectorStore: the embeddings must be a BgeM3Embeddings (its model encodes the dense and sparse outputs); got ${describe(embeddings)}.`);
    }
    if (args === null || typeof args !== 'object') {
      throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3VectorStore: the second argument must be an options object such as { index }; got ${describe(args)}.`);
    }
    const { index, searchType, candidates, fusion, weights, rrfK, maxQueryLength, maxPassageLength, batchSize } = args;
    super(embeddings, { searchType, candidates, fusion, weights, rrfK, maxQueryLength, maxPassageLength, batchSize });
    if (index !== undefined && !isHybridIndex(index)) {
      throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3VectorStore: the index option must be a HybridIndex (a MemoryHybridIndex or PgHybridIndex); got ${describe(index)}.`);
    }
    this.index = index ?? new MemoryHybridIndex({ ...embeddings.modelFields });
    this.searchType = checkMode(searchType, 'BgeM3VectorStore: searchType');
    this.hybridOptions = { candidates, fusion, weights, rrfK };
    resolveSearchOptions(this.hybridOptions); // bad options fail here, not at the first query
    this.encoder = new StoreEncoder(() => embeddings.getModel(), this.index, { maxQueryLength, maxPassageLength, batchSize }, 'BgeM3VectorStore');
  }

  /** A store over `docs` (encoded and added with `addDocuments`). */
  static override async fromDocuments(docs: DocumentInterface[], embeddings: BgeM3Embeddings, args: BgeM3VectorStoreArgs = {}): Promise<BgeM3VectorStore> {
    const store = new this(embeddings, args);
    await store.addDocuments(docs);
    return store;
  }

  /** A store over `texts`; `metadatas` is one object per text, or one object for all. */
  static override async fromTexts(texts: string[], metadatas: object[] | object, embeddings: BgeM3Embeddings, args: BgeM3VectorStoreArgs = {}): Promise<BgeM3VectorStore> {
    if (!Array.isArray(texts)) {
      throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3VectorStore.fromTexts expects an array of strings; got ${describe(texts)}.`);
    }
    if (Array.isArray(metadatas) && metadatas.length !== texts.length) {
      throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3VectorStore.fromTexts: ${texts.length} texts but ${metadatas.length} metadata objects; give one per text, or one object for all.`);
    }
    const docs = texts.map((pageContent, i) => new Document({ pageContent, metadata: { ...(Array.isArray(metadatas) ? metadatas[i] : metadatas) } }));
    return this.fromDocuments(docs, embeddings, args);
  }

  /**
   * Refused: a dense vector alone cannot carry BGE-M3's sparse (lexical) weights, which hybrid and
   * sparse search need. Use `addDocuments` (the store encodes both outputs in one pass), or
   * `index.addEncoded` with precomputed dense and sparse encodings.
   */
  async addVectors(_vectors: number[][], _documents: DocumentInterface[]): Promise<never> {
    throw new BgeM3Error(
      'INVALID_ARGUMENT',
      'BgeM3VectorStore.addVectors: dense vectors alone cannot carry the sparse (lexical) weights that hybrid and sparse search need. Use addDocuments(documents) — the store encodes dense and sparse outputs in one pass — or store.index.addEncoded([{ id, text, metadata, dense, sparse }]) with precomputed encodings.',
    );
  }

  /**
   * Encodes the documents (dense + sparse) and adds them all at once. Ids come from `options.ids`,
   * else each document's `id`, else a random UUID; an id already indexed is replaced (upsert).
   * Returns the ids in input order.
   */
  async addDocuments(documents: DocumentInterface[], options: BgeM3AddDocumentOptions = {}): Promise<string[]> {
    if (!Array.isArray(documents)) {
      throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3VectorStore.addDocuments expects an array of Documents; got ${describe(documents)}.`);
    }
    const { ids } = options;
    if (ids !== undefined && (!Array.isArray(ids) || ids.length !== documents.length)) {
      throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3VectorStore.addDocuments: options.ids must be an array with one id per document (${documents.length}); got ${describe(ids)}.`);
    }
    const texts = documents.map((doc, i) => {
      if (typeof doc?.pageContent !== 'string') {
        throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3VectorStore.addDocuments: documents[${i}].pageContent must be a string; got ${describe(doc?.pageContent)}.`);
      }
      return doc.pageContent;
    });
    if (documents.length === 0) return [];
    const total = texts.length;
    const encoded = await this.encoder.documents(texts, {
      signal: options.signal,
      batchSize: options.batchSize,
      onProgress: options.onProgress ? ({ done }) => options.onProgress!({ phase: 'encode', done, total }) : undefined,
    });
    const rows: HybridEncodedDocument[] = documents.map((doc, i) => ({
      id: ids?.[i] || doc.id || undefined,
      text: texts[i]!,
      metadata: doc.metadata as HybridMetadata,
      dense: encoded.dense[i]!,
      sparse: encoded.sparse[i]!,
      colbert: encoded.colbert?.[i],
    }));
    return this.index.addEncoded(rows);
  }

  /** Deletes by id (`{ ids }`) or by metadata filter (`{ filter }`). */
  override async delete(params: { ids?: string[]; filter?: MetadataFilter } = {}): Promise<void> {
    const { ids, filter } = params ?? {};
    if (ids === undefined && filter === undefined) {
      throw new BgeM3Error('INVALID_ARGUMENT', 'BgeM3VectorStore.delete expects { ids: string[] } or { filter } (a metadata filter such as { source: "a.txt" }).');
    }
    if (ids !== undefined) await this.index.delete(ids);
    if (filter !== undefined) await deleteWhere(this.index, filter, indexDim(this.index, () => this.embeddings.getModel()));
  }

  /** Dense-only search with a query vector (e.g. from `embeddings.embedQuery`); the score is the dense inner product. */
  async similaritySearchVectorWithScore(query: number[], k: number, filter?: MetadataFilter): Promise<[DocumentInterface, number][]> {
    const results = await this.index.searchEncoded({ dense: query, sparse: {} }, { k, filter, fusion: 'weighted', weights: DENSE_ONLY, candidates: this.hybridOptions.candidates });
    return results.map((r) => [toDocument(r), r.score]);
  }

  /** The `k` best documents for the query, ranked by the store's `searchType` (hybrid by default). */
  override async similaritySearch(query: string, k = DEFAULT_K, filter?: MetadataFilter, _callbacks?: Callbacks): Promise<DocumentInterface[]> {
    return (await this.searchWithOptions(query, { k, filter })).map(([doc]) => doc);
  }

  /** As `similaritySearch`, with each document's score (fused, or the one leg's in dense / sparse mode). */
  override async similaritySearchWithScore(query: string, k = DEFAULT_K, filter?: MetadataFilter, _callbacks?: Callbacks): Promise<[DocumentInterface, number][]> {
    return this.searchWithOptions(query, { k, filter });
  }

  /** A text search with per-call `searchType` and `signal`. */
  async searchWithOptions(query: string, options: BgeM3VectorStoreSearchOptions = {}): Promise<[DocumentInterface, number][]> {
    const mode = options.searchType === undefined ? this.searchType : checkMode(options.searchType, 'searchType');
    const { dense, sparse } = await this.encoder.query(query, options.signal);
    const search: HybridSearchOptions = { ...modeOptions(mode, this.hybridOptions), k: options.k ?? DEFAULT_K, filter: options.filter, signal: options.signal };
    const results = await this.index.searchEncoded({ dense, sparse }, search);
    return results.map((r) => [toDocument(r), r.score]);
  }

  /**
   * Maximal marginal relevance: the `fetchK` best candidates by the store's ranking, then LangChain's
   * `maximalMarginalRelevance` over their dense vectors. The index does not return stored vectors,
   * so the candidates' texts are encoded again (dense only): each MMR query costs `fetchK` passage
   * encodings, so keep `fetchK` modest (default 20).
   */
  override async maxMarginalRelevanceSearch(query: string, given: BgeM3MMRSearchOptions, _callbacks?: Callbacks): Promise<DocumentInterface[]> {
    const options: BgeM3MMRSearchOptions = given ?? { k: DEFAULT_K };
    const k = checkPositiveInteger(options.k ?? DEFAULT_K, 'maxMarginalRelevanceSearch: k');
    const fetchK = checkPositiveInteger(options.fetchK ?? Math.max(DEFAULT_FETCH_K, k), 'maxMarginalRelevanceSearch: fetchK');
    const lambda = options.lambda ?? 0.5;
    if (typeof lambda !== 'number' || !(lambda >= 0 && lambda <= 1)) {
      throw new BgeM3Error('INVALID_ARGUMENT', `maxMarginalRelevanceSearch: lambda must be a number in [0, 1] (1: relevance only, 0: diversity only); got ${describe(lambda)}.`);
    }
    const candidates = await this.searchWithOptions(query, { k: fetchK, filter: options.filter, searchType: options.searchType, signal: options.signal });
    if (candidates.length === 0) return [];
    const vectors = await this.encoder.dense(query, candidates.map(([d]) => d.pageContent), options.signal);
    const picked = maximalMarginalRelevance(vectors.query, vectors.passages, lambda, Math.min(k, candidates.length));
    return picked.map((i) => candidates[i]![0]);
  }

  /**
   * A `VectorStoreRetriever` (a {@link BgeM3VectorStoreRetriever}) over this store: `k` (4),
   * `filter`, `searchType` (`'similarity'`, `'mmr'`, `'hybrid'`, `'dense'`, `'sparse'`),
   * `searchKwargs` for MMR; all of them can also be given per call in `invoke(query, config)`.
   */
  override asRetriever(
    kOrFields?: number | Partial<BgeM3VectorStoreRetrieverInput<this>>,
    filter?: MetadataFilter,
    callbacks?: Callbacks,
    tags?: string[],
    metadata?: Record<string, unknown>,
    verbose?: boolean,
  ): BgeM3VectorStoreRetriever<this>;
  /** LangChain's own signature (what `VectorStore.asRetriever` declares). */
  override asRetriever(
    kOrFields?: number | Partial<VectorStoreRetrieverInput<this>>,
    filter?: this['FilterType'],
    callbacks?: Callbacks,
    tags?: string[],
    metadata?: Record<string, unknown>,
    verbose?: boolean,
  ): VectorStoreRetriever<this>;
  override asRetriever(
    kOrFields?: number | Partial<BgeM3VectorStoreRetrieverInput<this>>,
    filter?: MetadataFilter,
    callbacks?: Callbacks,
    tags?: string[],
    metadata?: Record<string, unknown>,
    verbose?: boolean,
  ): BgeM3VectorStoreRetriever<this> {
    if (typeof kOrFields === 'number' || kOrFields === undefined) {
      return new BgeM3VectorStoreRetriever({ vectorStore: this, k: kOrFields, filter, callbacks, tags: [...(tags ?? []), this._vectorstoreType()], metadata, verbose });
    }
    return new BgeM3VectorStoreRetriever({ ...kOrFields, vectorStore: this, tags: [...(kOrFields.tags ?? []), this._vectorstoreType()] });
  }
}

const RETRIEVER_TYPES: readonly BgeM3RetrieverSearchType[] = ['similarity', 'mmr', 'hybrid', 'dense', 'sparse'];

function checkRetrieverType(value: unknown, where: string): BgeM3RetrieverSearchType {
  if (!RETRIEVER_TYPES.includes(value as BgeM3RetrieverSearchType)) {
    throw new BgeM3Error('INVALID_ARGUMENT', `${where} must be one of ${RETRIEVER_TYPES.map((t) => `'${t}'`).join(', ')}; got ${describe(value)}.`);
  }
  return value as BgeM3RetrieverSearchType;
}

/**
 * LangChain's `VectorStoreRetriever` over a {@link BgeM3VectorStore}, with the store's rankings as
 * extra `searchType`s and per-call options: `invoke(query, { k, filter, searchType, fetchK, lambda,
 * signal, timeout })`.
 */
export class BgeM3VectorStoreRetriever<V extends BgeM3VectorStore = BgeM3VectorStore> extends VectorStoreRetriever<V> {
  static override lc_name(): string {
    return 'BgeM3VectorStoreRetriever';
  }

  declare searchType: BgeM3RetrieverSearchType;

  constructor(fields: BgeM3VectorStoreRetrieverInput<V>) {
    super(fields as unknown as VectorStoreRetrieverInput<V>);
    this.searchType = checkRetrieverType(fields.searchType ?? 'similarity', 'BgeM3VectorStoreRetriever: searchType');
    this.searchKwargs = fields.searchKwargs;
    checkPositiveInteger(this.k, 'BgeM3VectorStoreRetriever: k');
  }

  /** Retrieves with per-call options (see {@link BgeM3VectorStoreRetrieverCallOptions}); `signal` / `timeout` abort the call. */
  override invoke(input: string, options?: BgeM3VectorStoreRetrieverCallOptions): Promise<DocumentInterface[]> {
    return invokeRetriever(this, input, options, (query, config, runManager) => this.retrieve(query, config, runManager));
  }

  override async _getRelevantDocuments(query: string, runManager?: CallbackManagerForRetrieverRun): Promise<DocumentInterface[]> {
    return this.retrieve(query, {}, runManager);
  }

  private async retrieve(query: string, config: BgeM3VectorStoreRetrieverCallOptions, runManager?: CallbackManagerForRetrieverRun): Promise<DocumentInterface[]> {
    const k = config.k ?? this.k;
    const filter = config.filter ?? this.filter;
    const type = config.searchType === undefined ? this.searchType : checkRetrieverType(config.searchType, 'searchType');
    const { signal } = config;
    if (type === 'mmr') {
      const fetchK = config.fetchK ?? this.searchKwargs?.fetchK;
      const lambda = config.lambda ?? this.searchKwargs?.lambda;
      return this.vectorStore.maxMarginalRelevanceSearch(query, { k, filter, fetchK, lambda, signal }, runManager?.getChild('vectorstore'));
    }
    const searchType = type === 'similarity' ? undefined : type;
    const found = await this.vectorStore.searchWithOptions(query, { k, filter, searchType, signal });
    return found.map(([doc]) => doc);
  }
}
