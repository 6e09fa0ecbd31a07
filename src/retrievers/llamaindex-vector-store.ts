/**
 * `BgeM3VectorStore`: a LlamaIndex.TS `BaseVectorStore` over any `HybridIndex`
 * (`MemoryHybridIndex` by default, or `PgHybridIndex`), with dense, sparse and hybrid query modes.
 *
 * - Stores text (`storesText: true`): nodes come back from the index, no docstore needed to read them.
 * - `add(nodes)` indexes each node's `id_`, its text (`getContent(MetadataMode.NONE)`) and metadata,
 *   plus `ref_doc_id` (the source document's id, or the node's own id when it has no source) so that
 *   `delete(refDocId)` removes every node of a document.
 * - Encoding once: the store's `embedModel` ({@link BgeM3VectorStoreEmbedding}) computes a node's
 *   dense vector and lexical weights in one encoder pass and keeps the weights for `add`, so
 *   `VectorStoreIndex` (which embeds nodes with the store's `embedModel` before adding them) and an
 *   `IngestionPipeline` with `vectorStore.embedModel` as its last transformation encode each node
 *   once. Nodes embedded by another model are encoded again by `add` (their `embedding` is not used:
 *   a dense vector alone carries no sparse weights).
 * - `query`: `DEFAULT` = dense (the given `queryEmbedding`, else `queryStr` encoded), `SPARSE` =
 *   lexical weights, `HYBRID` = fused, `alpha` → leg weights `{ dense: alpha, sparse: 1 − alpha }`
 *   (no alpha: the paper's `{ dense: 1, sparse: 0.3 }`, i.e. alpha = 1/1.3 ≈ 0.77). `filters`
 *   (LlamaIndex `MetadataFilters`) are translated by `llamaindex-filters.ts`; what cannot be
 *   expressed is an error.
 * - Persistence is the index's: `MemoryHybridIndex.save` / `load`, or a `PgHybridIndex` table.
 */
import { BaseEmbedding } from '@llamaindex/core/embeddings';
import { MetadataMode, NodeRelationship, TextNode, type BaseNode, type Metadata } from '@llamaindex/core/schema';
import { BaseVectorStore, type MetadataFilters, type VectorStoreQuery, type VectorStoreQueryResult } from '@llamaindex/core/vector-store';
import { BgeM3Error } from '../errors.js';
import type { BgeM3Model } from '../model/bge-m3-model.js';
import type { LexicalWeights } from '../scores.js';
import { checkPositiveInteger, describeValue as describe } from '../shared/checks.js';
import { DEFAULT_MODEL_SOURCE, ModelHandle, type BgeM3ModelFields } from '../shared/model-option.js';
import { DEFAULT_WEIGHTED_WEIGHTS, resolveSearchOptions } from '../stores/fusion.js';
import { MemoryHybridIndex } from '../stores/memory/memory-hybrid-index.js';
import type { HybridEncodedDocument, HybridFusion, HybridIndex, HybridSearchOptions, HybridSearchResult, HybridWeights, MetadataFilter } from '../stores/types.js';
import { fromLlamaIndexFilters } from './llamaindex-filters.js';
import { deleteWhere, DENSE_ONLY, indexDim, isHybridIndex, SPARSE_ONLY, StoreEncoder, type StoreEncodingOptions } from './store-support.js';

/** The metadata key holding a node's source document id (LlamaIndex's name for it). */
export const REF_DOC_ID_KEY = 'ref_doc_id';
/** Metadata keys holding a node's `excludedEmbedMetadataKeys` / `excludedLlmMetadataKeys` (stored only when non-empty). */
export const EXCLUDED_EMBED_KEYS_KEY = '_excluded_embed_metadata_keys';
export const EXCLUDED_LLM_KEYS_KEY = '_excluded_llm_metadata_keys';
const RESERVED_KEYS = [REF_DOC_ID_KEY, EXCLUDED_EMBED_KEYS_KEY, EXCLUDED_LLM_KEYS_KEY];

export interface BgeM3VectorStoreOptions extends BgeM3ModelFields, StoreEncodingOptions {
  /** The index holding the nodes. Default: a new `MemoryHybridIndex` with `model`. */
  index?: HybridIndex;
  /**
   * The model that encodes nodes and queries: a `BgeM3Model` or a source string. Default: the
   * index's (`index.getModel()`, which `MemoryHybridIndex` has); without an index, `'BAAI/bge-m3'`.
   * Required for an index without `getModel()` (e.g. `PgHybridIndex`): pass the model it was built with.
   */
  model?: BgeM3ModelFields['model'];
  /** Default `alpha` of `HYBRID` queries (weight of the dense leg; sparse gets 1 − alpha). Default: none, i.e. the paper's `{ dense: 1, sparse: 0.3 }`. */
  alpha?: number;
  /** Fusion of `HYBRID` queries: `'weighted'` (default) or `'rrf'`. */
  fusion?: HybridFusion;
  /** Candidates per leg before fusion. Default 100. */
  candidates?: number;
  /** RRF constant. Default 60. */
  rrfK?: number;
}

/** `customParams` of a query: per-query fusion options (`weights` replaces the alpha mapping in `HYBRID`). */
export interface BgeM3VectorStoreQueryParams {
  candidates?: number;
  fusion?: HybridFusion;
  rrfK?: number;
  weights?: Partial<HybridWeights>;
}

/** Options (second argument) of {@link BgeM3VectorStore.query}. */
export interface BgeM3VectorStoreQueryOptions {
  /** Aborts the query encoding and search. */
  signal?: AbortSignal;
}

interface CachedEncoding {
  text: string;
  dense: number[];
  sparse: LexicalWeights;
  /** ColBERT rows, kept until `add` when the index stores multi-vectors. */
  colbert?: Float32Array[];
}

/** @internal Encodes the store's nodes and queries; `embedNodes` keeps each node's lexical weights for `add`. */
export class NodeEncoder {
  readonly cache = new WeakMap<BaseNode, CachedEncoding>();
  constructor(readonly encoder: StoreEncoder) {}

  async embedNodes(nodes: BaseNode[], options?: { progressCallback?: (done: number, total: number) => void }): Promise<BaseNode[]> {
    const texts = nodes.map((node, i) => nodeText(node, i));
    const { dense, sparse, colbert } = await this.encoder.documents(texts, {
      onProgress: options?.progressCallback ? ({ done, total }) => options.progressCallback!(done, total) : undefined,
    });
    nodes.forEach((node, i) => {
      const vector = Array.from(dense[i]!);
      node.embedding = vector;
      this.cache.set(node, { text: texts[i]!, dense: vector, sparse: sparse[i]!, colbert: colbert?.[i] });
    });
    return nodes;
  }
}

/**
 * The store's `embedModel`: BGE-M3 dense vectors (`getTextEmbedding`, queries), and as a node
 * transformation it encodes each node's text (`MetadataMode.NONE`, what the store indexes) once,
 * dense and sparse, setting `node.embedding` and keeping the lexical weights for the store's `add`.
 */
export class BgeM3VectorStoreEmbedding extends BaseEmbedding {
  private readonly nodeEncoder: NodeEncoder;

  /** @internal created by `BgeM3VectorStore`. */
  constructor(nodeEncoder: NodeEncoder) {
    super((nodes, options) => nodeEncoder.embedNodes(nodes, options as { progressCallback?: (done: number, total: number) => void }));
    this.nodeEncoder = nodeEncoder;
    this.embedBatchSize = nodeEncoder.encoder.batchSize ?? 256;
  }

  async getTextEmbedding(text: string): Promise<number[]> {
    const [vector] = await this.getTextEmbeddings([text]);
    return vector!;
  }

  override getTextEmbeddings = async (texts: string[]): Promise<number[][]> => {
    if (!Array.isArray(texts) || !texts.every((t) => typeof t === 'string')) {
      throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3VectorStoreEmbedding: texts must be an array of strings; got ${describe(texts)}.`);
    }
    const { dense } = await this.nodeEncoder.encoder.documents(texts);
    return dense.map((v) => Array.from(v));
  };
}

export class BgeM3VectorStore extends BaseVectorStore<HybridIndex, BgeM3VectorStoreQueryParams> {
  storesText = true;
  declare embedModel: BgeM3VectorStoreEmbedding;

  readonly index: HybridIndex;
  /** Default `alpha` of `HYBRID` queries (undefined: the paper's weights). */
  readonly alpha: number | undefined;
  /** Fusion settings of queries. */
  readonly fusionOptions: Omit<BgeM3VectorStoreQueryParams, 'weights'>;
  private readonly nodes: NodeEncoder;
  private readonly resolveModel: () => Promise<BgeM3Model>;

  constructor(options: BgeM3VectorStoreOptions = {}) {
    if (options === null || typeof options !== 'object') {
      throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3VectorStore: pass an options object such as { index, model }; got ${describe(options)}.`);
    }
    const { index: given, model, loadOptions, alpha, fusion, candidates, rrfK, maxQueryLength, maxPassageLength, batchSize } = options;
    if (given !== undefined && !isHybridIndex(given)) {
      throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3VectorStore: the index option must be a HybridIndex (a MemoryHybridIndex or PgHybridIndex); got ${describe(given)}.`);
    }
    const index = given ?? new MemoryHybridIndex({ model: model ?? DEFAULT_MODEL_SOURCE, loadOptions });
    let resolveModel: () => Promise<BgeM3Model>;
    if (model !== undefined || given === undefined) {
      const handle = new ModelHandle({ model: model ?? DEFAULT_MODEL_SOURCE, loadOptions }, 'BgeM3VectorStore');
      resolveModel = () => handle.get();
    } else if (typeof (given as { getModel?: unknown }).getModel === 'function') {
      resolveModel = () => (given as unknown as { getModel(): Promise<BgeM3Model> }).getModel();
    } else {
      throw new BgeM3Error('INVALID_ARGUMENT', 'BgeM3VectorStore: this index has no getModel(), so pass the model it was built with: new BgeM3VectorStore({ index, model }).');
    }
    const nodes = new NodeEncoder(new StoreEncoder(resolveModel, index, { maxQueryLength, maxPassageLength, batchSize }, 'BgeM3VectorStore'));
    super({ embedModel: new BgeM3VectorStoreEmbedding(nodes) });
    this.index = index;
    this.nodes = nodes;
    this.resolveModel = resolveModel;
    this.alpha = alpha === undefined ? undefined : checkAlpha(alpha, 'BgeM3VectorStore: alpha');
    this.fusionOptions = { fusion, candidates, rrfK };
    resolveSearchOptions(this.fusionOptions); // bad options fail here, not at the first query
  }

  /** The underlying `HybridIndex` (save it, open it again, or search it directly). */
  client(): HybridIndex {
    return this.index;
  }

  /** The model that encodes nodes and queries. */
  getModel(): Promise<BgeM3Model> {
    return this.resolveModel();
  }

  /**
   * Indexes the nodes (upsert by `id_`): text `getContent(MetadataMode.NONE)`, metadata, and
   * `ref_doc_id`. Nodes just embedded by this store's `embedModel` are not encoded again.
   */
  async add(nodes: BaseNode[]): Promise<string[]> {
    if (!Array.isArray(nodes)) {
      throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3VectorStore.add expects an array of nodes; got ${describe(nodes)}.`);
    }
    if (nodes.length === 0) return [];
    const texts = nodes.map((node, i) => nodeText(node, i));
    const missing: number[] = [];
    const slot: number[] = [];
    const cached = nodes.map((node, i) => {
      const c = this.nodes.cache.get(node);
      if (c && c.text === texts[i] && c.dense === node.embedding) return c;
      slot[i] = missing.push(i) - 1;
      return undefined;
    });
    const fresh = await this.nodes.encoder.documents(missing.map((i) => texts[i]!));
    const rows: HybridEncodedDocument[] = nodes.map((node, i) => {
      const c = cached[i];
      const j = slot[i]!;
      return {
        id: node.id_,
        text: texts[i]!,
        metadata: storedMetadata(node),
        dense: c ? c.dense : fresh.dense[j]!,
        sparse: c ? c.sparse : fresh.sparse[j]!,
        colbert: c ? c.colbert : fresh.colbert?.[j],
      };
    });
    const ids = await this.index.addEncoded(rows);
    for (const node of nodes) this.nodes.cache.delete(node);
    return ids;
  }

  /** Deletes every node of the document `refDocId` (nodes whose `ref_doc_id` is it). */
  async delete(refDocId: string, _deleteOptions?: object): Promise<void> {
    if (typeof refDocId !== 'string') {
      throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3VectorStore.delete expects a ref doc id string; got ${describe(refDocId)}.`);
    }
    await deleteWhere(this.index, { [REF_DOC_ID_KEY]: refDocId }, indexDim(this.index, this.resolveModel));
  }

  /**
   * Queries the index. `mode`: `DEFAULT` (dense; uses `queryEmbedding` when given, else encodes
   * `queryStr`), `SPARSE` (lexical weights of `queryStr`), `HYBRID` (`queryStr`; `alpha` → weights
   * `{ dense: alpha, sparse: 1 − alpha }`, default the paper's `{ dense: 1, sparse: 0.3 }`).
   * `filters`: LlamaIndex `MetadataFilters`. Returns nodes, their scores and ids, best first.
   */
  async query(query: VectorStoreQuery<BgeM3VectorStoreQueryParams>, options: BgeM3VectorStoreQueryOptions = {}): Promise<VectorStoreQueryResult> {
    if (query === null || typeof query !== 'object') {
      throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3VectorStore.query expects a VectorStoreQuery { queryStr, queryEmbedding, similarityTopK, mode, filters }; got ${describe(query)}.`);
    }
    const k = checkPositiveInteger(query.similarityTopK ?? 2, 'similarityTopK');
    if (query.docIds !== undefined && query.docIds.length > 0) {
      throw new BgeM3Error('INVALID_ARGUMENT', 'BgeM3VectorStore.query: docIds is not supported (the filter language reads metadata, not ids); filter on metadata instead, e.g. { filters: [{ key: "ref_doc_id", value: [...], operator: "in" }] }.');
    }
    const filter: MetadataFilter | undefined = fromLlamaIndexFilters(query.filters as MetadataFilters | undefined);
    const custom = query.customParams ?? {};
    const base: HybridSearchOptions = { k, filter, signal: options.signal, candidates: custom.candidates ?? this.fusionOptions.candidates };
    const mode = (query.mode ?? 'default') as string;
    const text = () => {
      if (typeof query.queryStr !== 'string') {
        throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3VectorStore.query: mode ${mode} needs queryStr (the query text, for its lexical weights).`);
      }
      return query.queryStr;
    };
    let results: HybridSearchResult[];
    switch (mode) {
      case 'default': {
        const search = { ...base, fusion: 'weighted' as const, weights: DENSE_ONLY };
        if (query.queryEmbedding !== undefined && query.queryEmbedding !== null && query.queryEmbedding.length > 0) {
          results = await this.index.searchEncoded({ dense: query.queryEmbedding, sparse: {} }, search);
        } else {
          if (typeof query.queryStr !== 'string') {
            throw new BgeM3Error('INVALID_ARGUMENT', 'BgeM3VectorStore.query: mode default needs queryEmbedding or queryStr.');
          }
          results = await this.index.searchEncoded(await this.nodes.encoder.query(query.queryStr, options.signal), search);
        }
        break;
      }
      case 'sparse':
        results = await this.index.searchEncoded(await this.nodes.encoder.query(text(), options.signal), { ...base, fusion: 'weighted', weights: SPARSE_ONLY });
        break;
      case 'hybrid': {
        const alpha = query.alpha ?? this.alpha;
        const weights = custom.weights ?? (alpha === undefined ? DEFAULT_WEIGHTED_WEIGHTS : alphaWeights(checkAlpha(alpha, 'alpha')));
        const search: HybridSearchOptions = { ...base, fusion: custom.fusion ?? this.fusionOptions.fusion, rrfK: custom.rrfK ?? this.fusionOptions.rrfK, weights };
        resolveSearchOptions(search);
        results = await this.index.searchEncoded(await this.nodes.encoder.query(text(), options.signal), search);
        break;
      }
      default:
        throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3VectorStore.query: mode ${JSON.stringify(mode)} is not supported; use VectorStoreQueryMode.DEFAULT (dense), SPARSE (lexical) or HYBRID (dense + sparse, alpha = dense weight).`);
    }
    return {
      nodes: results.map(toTextNode),
      similarities: results.map((r) => r.score),
      ids: results.map((r) => r.id),
    };
  }
}

function checkAlpha(alpha: unknown, where: string): number {
  if (typeof alpha !== 'number' || !(alpha >= 0 && alpha <= 1)) {
    throw new BgeM3Error('INVALID_ARGUMENT', `${where} must be a number in [0, 1] (the dense leg's weight; sparse gets 1 − alpha); got ${describe(alpha)}.`);
  }
  return alpha;
}

/** `alpha` → leg weights: dense = alpha, sparse = 1 − alpha. */
export function alphaWeights(alpha: number): HybridWeights {
  return { dense: alpha, sparse: 1 - alpha };
}

function nodeText(node: BaseNode, i: number): string {
  // Duck-typed: LlamaIndex's ESM and CJS builds have different BaseNode classes.
  const text = typeof node?.getContent === 'function' ? node.getContent(MetadataMode.NONE) : undefined;
  if (typeof text !== 'string') {
    throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3VectorStore: nodes[${i}] is not a node with text content; got ${describe(node)}.`);
  }
  return text;
}

function storedMetadata(node: BaseNode): Metadata {
  const metadata: Metadata = { ...node.metadata };
  metadata[REF_DOC_ID_KEY] = node.sourceNode?.nodeId ?? node.id_;
  if (node.excludedEmbedMetadataKeys?.length) metadata[EXCLUDED_EMBED_KEYS_KEY] = [...node.excludedEmbedMetadataKeys];
  if (node.excludedLlmMetadataKeys?.length) metadata[EXCLUDED_LLM_KEYS_KEY] = [...node.excludedLlmMetadataKeys];
  return metadata;
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** A search result as a `TextNode`: the stored metadata (reserved keys removed), the source document as its SOURCE relationship. */
function toTextNode(r: HybridSearchResult): TextNode {
  const metadata: Metadata = { ...r.metadata };
  const refDocId = metadata[REF_DOC_ID_KEY];
  const excludedEmbed = stringList(metadata[EXCLUDED_EMBED_KEYS_KEY]);
  const excludedLlm = stringList(metadata[EXCLUDED_LLM_KEYS_KEY]);
  for (const key of RESERVED_KEYS) delete metadata[key];
  return new TextNode({
    id_: r.id,
    text: r.text,
    metadata,
    excludedEmbedMetadataKeys: excludedEmbed,
    excludedLlmMetadataKeys: excludedLlm,
    relationships: typeof refDocId === 'string' && refDocId !== r.id ? { [NodeRelationship.SOURCE]: { nodeId: refDocId, metadata: {} } } : {},
  });
}
