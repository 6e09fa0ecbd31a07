/**
 * The framework-free M3 reranker: scores passages against a query with all three BGE-M3 signals and
 * FlagEmbedding's `'colbert+sparse+dense'` weighted average, exactly as `BgeM3Model.computeScore`
 * does, while caching passage encodings so that reranking the same documents again is cheap. Given
 * an `index` that stores multi-vectors (`multiVectors: 'fp16' | 'int8'`), passages passed with their
 * ids are scored from the stored vectors: no passage encode, one query encode per call.
 * The LangChain compressor and the LlamaIndex postprocessor are thin wrappers around this class.
 */
import { BgeM3Error } from '../errors.js';
import type { BgeM3Model } from '../model/bge-m3-model.js';
import { isBgeM3Model } from '../shared/model-option.js';
import { checkInteger, checkMaxLength, describeValue } from '../shared/checks.js';
import type { ColbertSource, HybridIndex, MultiVectorSource, StoredPairScores } from '../stores/types.js';
import { DEFAULT_BATCH_SIZE, DEFAULT_PASSAGE_LENGTH, DEFAULT_QUERY_LENGTH } from '../shared/defaults.js';
import { checkModeWeights, colbertScore, combineScores, dot, lexicalMatchingScore, type ModeWeights } from '../scores.js';
import { recallQuery } from '../stores/query-encoding.js';
import { PassageCache, type PassageCacheStats, type TextEncoding } from './passage-cache.js';

export type { PassageCacheStats } from './passage-cache.js';

/** The BGE-M3 model card's rerank weights `[dense, sparse, colbert]`. */
export const DEFAULT_RERANK_WEIGHTS: ModeWeights = [0.4, 0.2, 0.4];
/**
 * Default bound of the passage-encoding cache: 256 MiB. With the real model a 512-token passage
 * costs about 2 MiB (its ColBERT rows are 511 × 1024 floats), so this keeps roughly the last
 * 128 such passages, enough to rerank a few result pages again without re-encoding.
 */
export const DEFAULT_RERANK_CACHE_BYTES = 256 * 1024 * 1024;

export interface M3RerankerOptions {
  /** The loaded model; the reranker never disposes it (one model can serve many adapters). */
  model: BgeM3Model;
  /** `[dense, sparse, colbert]` weights of the final score. Default `[0.4, 0.2, 0.4]` (the model card's). */
  weights?: readonly [number, number, number];
  /** Maximum query tokens, counting `<s>`/`</s>`. Default 512 (FlagEmbedding's `max_query_length`), or the model's limit if lower. */
  maxQueryLength?: number;
  /** Maximum passage tokens, counting `<s>`/`</s>`. Default 8192 (FlagEmbedding's `max_passage_length`), or the model's limit if lower. */
  maxPassageLength?: number;
  /** Maximum texts per encode batch. Default 256 (FlagEmbedding's). */
  batchSize?: number;
  /**
   * Bound of the passage-encoding cache in (estimated) bytes: dense + ColBERT rows + lexical weights
   * + keys. Least recently used passages are dropped first. Default 256 MiB; 0 disables caching.
   */
  cacheMaxBytes?: number;
  /**
   * An index that stores its documents' ColBERT vectors (`MemoryHybridIndex` or `PgHybridIndex` with
   * `multiVectors`): passages given as `{ text, id }` whose id it stores are scored from it without
   * encoding them; the rest are encoded. The scores are those of re-encoding, within the storage's
   * rounding (fp16 ≤ 1e-3, int8 ≤ 5e-3), when the index was built with the same passage length.
   */
  index?: MultiVectorSource | HybridIndex;
}

/** A passage to rerank: its text, and the id under which `index` may store its vectors. */
export interface M3RerankPassage {
  text: string;
  id?: string;
}

/** Options of one `M3Reranker.rerank` call. */
export interface M3RerankerCallOptions {
  /** Return only the best `topN` results. Default: all of them. */
  topN?: number;
  /** Called as passages that were not cached get encoded. */
  onProgress?: (progress: { done: number; total: number }) => void;
  /** Aborts encoding between batches. */
  signal?: AbortSignal;
  /** The query's three outputs (dense, lexical weights, ColBERT rows) when already encoded with the same `maxQueryLength`. */
  queryEncoding?: TextEncoding;
}

/** @deprecated Renamed {@link M3RerankerCallOptions}; this alias goes in the next release. */
export type M3RerankOptions = M3RerankerCallOptions;

/** One reranked passage. */
export interface M3RerankResult {
  /** Position of the passage in the input list. */
  index: number;
  /** `'colbert+sparse+dense'`: `(w0*dense + w1*sparse + w2*colbert) / (w0 + w1 + w2)`. */
  relevanceScore: number;
  /** Inner product of the dense vectors. */
  dense: number;
  /** Lexical matching score of the sparse weights. */
  sparse: number;
  /** ColBERT MaxSim score. */
  colbert: number;
  /** `'stored'`: scored from the index's stored vectors; `'encoded'`: the passage was encoded. */
  colbertSource: ColbertSource;
}

export class M3Reranker {
  readonly model: BgeM3Model;
  readonly weights: ModeWeights;
  readonly maxQueryLength: number;
  readonly maxPassageLength: number;
  readonly batchSize: number;
  private readonly cache: PassageCache;
  private readonly index: MultiVectorSource | undefined;
  /** Passages being encoded right now, so concurrent reranks of the same text encode it once. */
  private readonly pending = new Map<string, Promise<TextEncoding>>();

  constructor(options: M3RerankerOptions) {
    if (options === null || typeof options !== 'object') {
      throw new BgeM3Error('INVALID_ARGUMENT', 'M3Reranker: pass an options object, e.g. new M3Reranker({ model }).');
    }
    const { model } = options;
    if (!isBgeM3Model(model)) {
      throw new BgeM3Error(
        'INVALID_ARGUMENT',
        'M3Reranker: the model option must be a loaded BgeM3Model (await BgeM3Model.load(dir)).',
      );
    }
    this.model = model;
    this.weights = checkModeWeights(options.weights ?? DEFAULT_RERANK_WEIGHTS, 'weights');
    // Defaults capped by the model's position table, so a model with a shorter one works out of the box.
    this.maxQueryLength = checkMaxLength(options.maxQueryLength ?? Math.min(DEFAULT_QUERY_LENGTH, model.maxPositions), 'maxQueryLength', model.maxPositions);
    this.maxPassageLength = checkMaxLength(options.maxPassageLength ?? Math.min(DEFAULT_PASSAGE_LENGTH, model.maxPositions), 'maxPassageLength', model.maxPositions);
    this.batchSize = checkInteger(options.batchSize ?? DEFAULT_BATCH_SIZE, 'batchSize', 1);
    this.cache = new PassageCache(checkInteger(options.cacheMaxBytes ?? DEFAULT_RERANK_CACHE_BYTES, 'cacheMaxBytes', 0));
    if (options.index !== undefined && typeof (options.index as MultiVectorSource | null)?.scoreStored !== 'function') {
      throw new BgeM3Error('INVALID_ARGUMENT', `M3Reranker: the index option must be an index that can store multi-vectors (a MemoryHybridIndex or PgHybridIndex, e.g. a vector store's or retriever's .index); got ${describeValue(options.index)}.`);
    }
    this.index = options.index as MultiVectorSource | undefined;
  }

  /**
   * Scores every passage against the query; returns results sorted by `relevanceScore`, highest
   * first (ties keep input order), cut to `topN`. The scores equal `model.computeScore` for the same
   * pairs, weights and lengths. An empty passage list returns `[]` without touching the model;
   * identical passages are encoded once and each gets its own result. Passages given as
   * `{ text, id }` are looked up in `index` (when set) and scored from its stored vectors.
   */
  async rerank(query: string, passages: readonly (string | M3RerankPassage)[], options: M3RerankerCallOptions = {}): Promise<M3RerankResult[]> {
    if (typeof query !== 'string') {
      throw new BgeM3Error('INVALID_ARGUMENT', `rerank: the query must be a string; got ${describeValue(query)}.`);
    }
    const { texts, ids } = splitPassages(passages);
    const topN = options.topN === undefined ? texts.length : checkInteger(options.topN, 'topN', 1);
    if (texts.length === 0) return [];

    // A retriever over an index with multi-vectors has just encoded this query with all three outputs.
    const queryEncoding =
      options.queryEncoding ?? recallQuery(this.model, this.maxQueryLength, query) ?? (await this.encodeTexts([query], this.maxQueryLength, { signal: options.signal }))[0]!;
    const stored: (StoredPairScores | undefined)[] = new Array(texts.length);
    const lookup = this.index ? ids.flatMap((id, i) => (id === undefined ? [] : [i])) : [];
    if (lookup.length > 0) {
      const scores = await this.index!.scoreStored(queryEncoding, lookup.map((i) => ids[i]!), options.signal);
      lookup.forEach((i, j) => (stored[i] = scores[j]));
    }
    const toEncode = texts.flatMap((text, i) => (stored[i] ? [] : [text]));
    const encodings = toEncode.length > 0 ? await this.encodePassages(toEncode, options) : [];

    let next = 0;
    const results = texts.map((_, index): M3RerankResult => {
      const known = stored[index];
      let parts: StoredPairScores;
      if (known) parts = known;
      else {
        const p = encodings[next++]!;
        parts = { dense: dot(queryEncoding.dense, p.dense), sparse: lexicalMatchingScore(queryEncoding.sparse, p.sparse), colbert: colbertScore(queryEncoding.colbert, p.colbert) };
      }
      const s = combineScores(parts.dense, parts.sparse, parts.colbert, this.weights);
      return { index, relevanceScore: s['colbert+sparse+dense'], dense: s.dense, sparse: s.sparse, colbert: s.colbert, colbertSource: known ? 'stored' : 'encoded' };
    });
    // Array.prototype.sort is stable, so equal scores keep their input order.
    results.sort((a, b) => b.relevanceScore - a.relevanceScore);
    return results.slice(0, topN);
  }

  /** Size and hit counters of the passage-encoding cache. */
  cacheStats(): PassageCacheStats {
    return this.cache.stats();
  }

  /** Drops every cached passage encoding. */
  clearCache(): void {
    this.cache.clear();
  }

  /** Encodings for each passage (in input order): cached, being encoded by another call, or encoded now in one batch. */
  private async encodePassages(passages: string[], options: M3RerankerCallOptions): Promise<TextEncoding[]> {
    const byKey = new Map<string, Promise<TextEncoding> | TextEncoding>();
    const missing = new Map<string, string>(); // key -> text, to encode in this call
    const borrowed = new Map<string, string>(); // key -> text, being encoded by another call
    for (const text of passages) {
      const key = this.cacheKey(text);
      if (byKey.has(key) || missing.has(key)) continue; // identical passages: look up and encode once
      const cached = this.cache.get(key);
      const pending = cached ? undefined : this.pending.get(key);
      if (cached) byKey.set(key, cached);
      else if (pending) {
        byKey.set(key, pending);
        borrowed.set(key, text);
      } else missing.set(key, text);
    }
    if (missing.size > 0) {
      const keys = [...missing.keys()];
      const texts = [...missing.values()];
      const batch = this.encodeTexts(texts, this.maxPassageLength, options);
      keys.forEach((key, i) => {
        const one = batch.then((list) => list[i]!);
        // Concurrent callers awaiting this text get the failure on their own await; no unhandled rejection here.
        one.catch(() => undefined);
        this.pending.set(key, one);
        byKey.set(key, one);
      });
      try {
        const list = await batch;
        keys.forEach((key, i) => this.cache.set(key, list[i]!));
      } finally {
        for (const key of keys) this.pending.delete(key);
      }
    }
    const resolved = new Map<string, TextEncoding>();
    for (const [key, value] of byKey) {
      try {
        resolved.set(key, await value);
      } catch (error) {
        if (!borrowed.has(key)) throw error;
        // Another call's encode of this text failed (e.g. that call was aborted): encode it here, under our own signal.
        const [encoding] = await this.encodeTexts([borrowed.get(key)!], this.maxPassageLength, { signal: options.signal });
        this.cache.set(key, encoding!);
        resolved.set(key, encoding!);
      }
    }
    return passages.map((text) => resolved.get(this.cacheKey(text))!);
  }

  /** All three outputs of each text, in order. */
  private async encodeTexts(texts: string[], maxLength: number, options: M3RerankerCallOptions): Promise<TextEncoding[]> {
    const r = await this.model.encode(texts, {
      returnDense: true,
      returnSparse: true,
      returnColbertVecs: true,
      batchSize: this.batchSize,
      maxLength,
      onProgress: options.onProgress,
      signal: options.signal,
    });
    return texts.map((_, i) => ({ dense: r.denseVecs![i]!, sparse: r.lexicalWeights![i]!, colbert: r.colbertVecs![i]! }));
  }

  /** Keyed by text and passage length: the same text truncated differently encodes differently. */
  private cacheKey(text: string): string {
    return `${this.maxPassageLength}\u0000${text}`;
  }
}

/** Texts and ids of `rerank`'s passages (strings, or `{ text, id? }`), checked. */
function splitPassages(passages: unknown): { texts: string[]; ids: (string | undefined)[] } {
  if (!Array.isArray(passages)) {
    throw new BgeM3Error('INVALID_ARGUMENT', `rerank: passages must be an array of strings or of { text, id? } objects; got ${describeValue(passages)}.`);
  }
  const texts: string[] = new Array(passages.length);
  const ids: (string | undefined)[] = new Array(passages.length);
  passages.forEach((p: unknown, i) => {
    const entry = p as M3RerankPassage | null;
    if (typeof p === 'string') texts[i] = p;
    else if (entry !== null && typeof entry === 'object' && typeof entry.text === 'string' && (entry.id === undefined || typeof entry.id === 'string')) {
      texts[i] = entry.text;
      ids[i] = entry.id;
    } else {
      throw new BgeM3Error('INVALID_ARGUMENT', `rerank: passages[${i}] is ${describeValue(p)}; every entry must be a string or a { text: string, id?: string } object.`);
    }
  });
  return { texts, ids };
}
