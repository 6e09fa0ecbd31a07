/**
 * What the LangChain and LlamaIndex vector stores share: encoding texts with the store's model
 * (dense + sparse in one pass), the search modes as leg weights, and removing documents by a
 * metadata filter through the `HybridIndex` contract (which deletes by id only).
 *
 * The stores encode documents and queries themselves and talk to the index through `addEncoded` /
 * `searchEncoded` / `delete` / `count` only, so they work over any `HybridIndex`, including one
 * opened without a model (`new MemoryHybridIndex({ dim })`, `PgHybridIndex.open({ model: null, dim })`).
 */
import { BgeM3Error } from '../errors.js';
import { encodeQuery } from '../stores/query-encoding.js';
import type { BgeM3Model } from '../model/bge-m3-model.js';
import type { LexicalWeights } from '../scores.js';
import { checkInteger, describeValue as describe } from '../shared/checks.js';
import { DEFAULT_PASSAGE_LENGTH, DEFAULT_QUERY_LENGTH } from '../shared/defaults.js';
import type { HybridFilter, HybridFusion, HybridIndex, HybridSearchOptions, HybridWeights } from '../stores/types.js';

/** How a store search ranks: fused dense + sparse, dense only, or sparse (lexical) only. */
export type BgeM3SearchMode = 'hybrid' | 'dense' | 'sparse';

export const SEARCH_MODES: readonly BgeM3SearchMode[] = ['hybrid', 'dense', 'sparse'];

/** Dense-only search: the sparse leg contributes no candidates and no score. */
export const DENSE_ONLY: Readonly<HybridWeights> = Object.freeze({ dense: 1, sparse: 0 });
/** Sparse-only (lexical) search. */
export const SPARSE_ONLY: Readonly<HybridWeights> = Object.freeze({ dense: 0, sparse: 1 });

/** The hybrid-mode options a store applies (the index's defaults where absent). */
export interface HybridModeOptions {
  /** Candidates per leg before fusion. Default 100 (the index's). */
  candidates?: number;
  /** `'weighted'` (default, the paper's) or `'rrf'`. */
  fusion?: HybridFusion;
  /** Leg weights in hybrid mode. Default `{ dense: 1, sparse: 0.3 }` (the paper's) for weighted fusion. */
  weights?: Partial<HybridWeights>;
  /** RRF constant. Default 60. */
  rrfK?: number;
}

export function checkMode(value: unknown, where: string): BgeM3SearchMode {
  if (value === undefined) return 'hybrid';
  if (!SEARCH_MODES.includes(value as BgeM3SearchMode)) {
    throw new BgeM3Error('INVALID_ARGUMENT', `${where} must be 'hybrid' (dense + sparse, fused), 'dense' or 'sparse'; got ${describe(value)}.`);
  }
  return value as BgeM3SearchMode;
}

/**
 * Search options of one mode: hybrid uses the store's fusion settings; dense and sparse use
 * weighted fusion with the other leg's weight 0, so the score is that leg's raw score.
 */
export function modeOptions(mode: BgeM3SearchMode, hybrid: HybridModeOptions): HybridSearchOptions {
  if (mode === 'hybrid') return { ...hybrid };
  return { candidates: hybrid.candidates, fusion: 'weighted', weights: mode === 'dense' ? DENSE_ONLY : SPARSE_ONLY };
}

/** Encoding lengths a store uses (defaults: the index's own when it exposes them, else FlagEmbedding's). */
export interface StoreEncodingOptions {
  /** Maximum query tokens (counting `<s>`/`</s>`). Default: the index's `maxQueryLength`, else 512. */
  maxQueryLength?: number;
  /** Maximum document tokens. Default: the index's `maxPassageLength`, else 8192. */
  maxPassageLength?: number;
  /** Texts per encoder batch. Default: the engine's (256). */
  batchSize?: number;
}

export interface EncodedTexts {
  dense: Float32Array[];
  sparse: LexicalWeights[];
  /** ColBERT rows, when the index stores multi-vectors. */
  colbert?: Float32Array[][];
}

/** Encodes texts with a store's model: dense and sparse in one encoder pass. */
export class StoreEncoder {
  readonly maxQueryLength: number;
  readonly maxPassageLength: number;
  readonly batchSize: number | undefined;
  /** Whether the index keeps documents' ColBERT rows (its `multiVectors` setting), so documents are encoded with them. */
  readonly colbert: boolean;

  constructor(
    private readonly resolveModel: () => Promise<BgeM3Model>,
    index: HybridIndex,
    options: StoreEncodingOptions,
    owner: string,
  ) {
    const fromIndex = (key: 'maxQueryLength' | 'maxPassageLength') => {
      const v = (index as unknown as Record<string, unknown>)[key];
      return typeof v === 'number' ? v : undefined;
    };
    this.maxQueryLength = checkInteger(options.maxQueryLength ?? fromIndex('maxQueryLength') ?? DEFAULT_QUERY_LENGTH, `${owner}: maxQueryLength`, 2);
    this.maxPassageLength = checkInteger(options.maxPassageLength ?? fromIndex('maxPassageLength') ?? DEFAULT_PASSAGE_LENGTH, `${owner}: maxPassageLength`, 2);
    this.batchSize = options.batchSize === undefined ? undefined : checkInteger(options.batchSize, `${owner}: batchSize`, 1);
    const storage = (index as { multiVectors?: unknown }).multiVectors;
    this.colbert = storage === 'fp16' || storage === 'int8';
  }

  model(): Promise<BgeM3Model> {
    return this.resolveModel();
  }

  /** Documents' dense vectors and lexical weights (and ColBERT rows when the index stores them). */
  async documents(texts: string[], options: { signal?: AbortSignal; batchSize?: number; onProgress?: (p: { done: number; total: number }) => void } = {}): Promise<EncodedTexts> {
    if (texts.length === 0) return { dense: [], sparse: [] };
    const model = await this.resolveModel();
    const out = await model.encode(texts, {
      returnDense: true,
      returnSparse: true,
      returnColbertVecs: this.colbert,
      maxLength: Math.min(this.maxPassageLength, model.maxPositions),
      batchSize: options.batchSize ?? this.batchSize,
      signal: options.signal,
      onProgress: options.onProgress,
    });
    options.signal?.throwIfAborted();
    return { dense: out.denseVecs!, sparse: out.lexicalWeights!, colbert: out.colbertVecs };
  }

  /** A query's dense vector and lexical weights (`maxQueryLength` tokens). */
  async query(text: string, signal?: AbortSignal): Promise<{ dense: Float32Array; sparse: LexicalWeights }> {
    if (typeof text !== 'string') {
      throw new BgeM3Error('INVALID_ARGUMENT', `the query must be a string; got ${describe(text)}.`);
    }
    const model = await this.resolveModel();
    if (this.colbert) {
      // All three outputs in the one query encode, remembered for a reranker that follows (M3Reranker with `index`).
      const m3 = (await encodeQuery(model, text, this.maxQueryLength, signal, true)).m3!;
      signal?.throwIfAborted();
      return { dense: m3.dense, sparse: m3.sparse };
    }
    const out = await model.encode([text], { returnDense: true, returnSparse: true, maxLength: Math.min(this.maxQueryLength, model.maxPositions), signal });
    signal?.throwIfAborted();
    return { dense: out.denseVecs![0]!, sparse: out.lexicalWeights![0]! };
  }

  /** Dense vectors only (for MMR: the query at query length, the passages at passage length). */
  async dense(query: string, passages: string[], signal?: AbortSignal): Promise<{ query: number[]; passages: number[][] }> {
    const model = await this.resolveModel();
    const [q, p] = await Promise.all([
      model.encode([query], { returnDense: true, maxLength: Math.min(this.maxQueryLength, model.maxPositions), signal }),
      model.encode(passages, { returnDense: true, maxLength: Math.min(this.maxPassageLength, model.maxPositions), batchSize: this.batchSize, signal }),
    ]);
    signal?.throwIfAborted();
    return { query: Array.from(q.denseVecs![0]!), passages: p.denseVecs!.map((v) => Array.from(v)) };
  }
}

/** Documents per round when deleting by filter (bounds memory on large indexes). */
const DELETE_ROUND = 1000;

/**
 * Deletes every document whose metadata passes `filter`, through the `HybridIndex` contract: a
 * dense-only `searchEncoded` with a zero query vector (every document scores 0, so the filter alone
 * decides) finds up to `DELETE_ROUND` matching ids, which are deleted; rounds repeat until a search
 * finds none. Exact on `MemoryHybridIndex` and on `PgHybridIndex` with `ann: false`; with HNSW
 * (`ann: true`) pgvector's iterative index scan finds the filtered rows, and the repeated rounds
 * catch any a round missed. Returns how many were removed.
 */
export async function deleteWhere(index: HybridIndex, filter: HybridFilter, dim: () => Promise<number>): Promise<number> {
  let removed = 0;
  let zero: Float32Array | undefined;
  for (;;) {
    const n = await index.count();
    if (n === 0) return removed;
    zero ??= new Float32Array(await dim());
    const take = Math.min(n, DELETE_ROUND);
    const found = await index.searchEncoded({ dense: zero, sparse: {} }, { k: take, candidates: take, fusion: 'weighted', weights: DENSE_ONLY, filter });
    if (found.length === 0) return removed;
    const gone = await index.delete(found.map((r) => r.id));
    removed += gone;
    if (gone === 0) return removed;
  }
}

/** The dense width of an index: its `dim` when it exposes one, else the model's. */
export function indexDim(index: HybridIndex, model: () => Promise<BgeM3Model>): () => Promise<number> {
  return async () => {
    const d = (index as unknown as { dim?: unknown }).dim;
    return typeof d === 'number' ? d : (await model()).dim;
  };
}

export function isHybridIndex(value: unknown): value is HybridIndex {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as HybridIndex).searchEncoded === 'function' &&
    typeof (value as HybridIndex).addEncoded === 'function' &&
    typeof (value as HybridIndex).delete === 'function' &&
    typeof (value as HybridIndex).count === 'function'
  );
}
